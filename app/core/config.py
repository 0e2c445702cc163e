"""Service settings: one pydantic-settings class, read from ``XRDID_*`` variables.

Built when the app is created (never at import), so tests pass their own.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from xrdid.data_paths import PROJECT_ROOT

if TYPE_CHECKING:
    from xrdid.sticks import SimulationLimits

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
# The most files XRDID_JOB_MAX_FILES may allow in one job.
JOB_MAX_FILES_CEILING = 100_000

# Placeholder keys people copy from examples; refused outside development.
_PLACEHOLDER_KEYS = {"changethis", "change-me", "changeme", "secret", "dev-key", "test"}
# Shorter keys are guessable; production keys must be at least this long.
MIN_PRODUCTION_KEY_CHARS = 16


def _default_library_path() -> Path:
    """The working library: under $XDG_DATA_HOME (outside the checkout, so
    adding references never touches tracked files)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "xrdid" / "library.sqlite"


KeyList = Annotated[list[SecretStr], NoDecode]

# Standard Webhooks secrets are 24–64 random bytes, base64, after "whsec_".
WEBHOOK_SECRET_PREFIX = "whsec_"
MIN_WEBHOOK_SECRET_BYTES = 24


def check_webhook_secret(value: str) -> None:
    """Refuse a webhook secret that is not "whsec_" + base64 of ≥ 24 bytes."""
    import base64
    import binascii

    body = value.strip().removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "XRDID_WEBHOOK_SECRET is not 'whsec_' + base64; make one with "
            "python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\""
        ) from exc
    if len(raw) < MIN_WEBHOOK_SECRET_BYTES:
        raise ValueError(
            f"XRDID_WEBHOOK_SECRET holds {len(raw)} bytes; use at least {MIN_WEBHOOK_SECRET_BYTES}"
        )


class Settings(BaseSettings):
    """Every knob of the service, each with the reason for its default
    (README "Running it", docs/operations.md)."""

    model_config = SettingsConfigDict(env_prefix="XRDID_", extra="ignore", frozen=True)

    environment: Literal["local", "production"] = "local"
    # The library the service reads and writes; created from the shipped
    # default on first start.
    library_path: Path = Field(default_factory=_default_library_path)
    default_library_path: Path = PROJECT_ROOT / "model_store" / "library.sqlite"
    model_path: Path = PROJECT_ROOT / "model_store" / "regnet1d.pt"
    # Confidence calibration of that model (`python -m indexer calibrate`).
    calibration_path: Path = PROJECT_ROOT / "model_store" / "calibration.json"
    # Raman (docs/raman.md): the model (absent: the service identifies XRD
    # only), its ranking settings, the working Raman library (None: next to
    # library_path) and the default it is created from (`make install` builds it).
    raman_model_path: Path = PROJECT_ROOT / "model_store" / "raman_regnet1d.pt"
    raman_ranking_path: Path = PROJECT_ROOT / "model_store" / "raman_ranking.json"
    raman_library_path: Path | None = None
    default_raman_library_path: Path = PROJECT_ROOT / "model_store" / "raman_library.sqlite"
    device: str | None = None  # "cpu", "cuda", "cuda:1"; None: CUDA when present
    # Threads per torch call: 1 lets concurrent requests use the cores instead
    # of fighting over them (measured: 2 threads per call doubles p95 on 2 cores).
    torch_threads: int = Field(default=1, ge=1, le=256)
    # Threads per matrix product of numpy's and scipy's BLAS (OpenBLAS starts one
    # per core): 1, as torch's. More wait for a free core and spin on a loaded
    # machine (measured: twice the CPU time per scan, docs/scale-out.md).
    blas_threads: int = Field(default=1, ge=1, le=256)
    # Requests doing CPU work (read, preprocess, embed, search) at once.
    compute_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    # True: POST /identify computes in XRDID_COMPUTE_THREADS processes of its
    # own, each with a copy of the model and the library's index in memory
    # (about 0.4 GB each at 10,000 references), so concurrent requests use
    # every core (Python runs the phase analysis one thread at a time:
    # docs/scale-out.md). False: on threads of this process, in its memory.
    identify_processes: bool = False
    # Processes preprocessing stored patterns when a new model re-embeds the library.
    reembed_workers: int = Field(default=1, ge=1, le=64)
    read_api_keys: KeyList = []
    write_api_keys: KeyList = []
    require_read_key: bool = False
    max_upload_bytes: int = Field(default=20 * MIB, ge=1024)
    default_top_k: int = Field(default=5, ge=1, le=100)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # How often a changed search index is saved (it is a cache of the database;
    # a crash only costs a patch on the next start).
    index_save_interval_s: float = Field(default=30.0, gt=0)
    # A shared PostgreSQL library (postgresql://user:password@host:port/db) for
    # stateless replicas; unset: the embedded SQLite library at library_path.
    database_url: SecretStr | None = None
    # With database_url: where this replica caches its search index (none: it
    # is rebuilt from the database at every start), and how often it checks
    # for other replicas' writes besides listening for them.
    index_cache_path: Path | None = None
    sync_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Exact search, approximate (IVF lists for the embeddings, 8-bit profile
    # rows compared in full where their sketches score best), or approximate
    # from approximate_from references ("auto", the default: it kept exact
    # search's top-5, see docs/scale-out.md).
    search_mode: Literal["auto", "exact", "approximate"] = "auto"
    # "worker": this process only claims and runs batch-job scans from the
    # shared queue (needs database_url); it serves /health, /ready and
    # /metrics, no /identify, /references or /jobs.
    role: Literal["api", "worker"] = "api"
    approximate_from: int = Field(default=200_000, ge=1)
    search_probe: int = Field(default=64, ge=1)
    profile_shortlist: float = Field(default=0.03, gt=0, le=1)
    sketch_dims: int = Field(default=64, ge=1, le=141)  # at most a sketch's 141 bins

    # --- Bounded work per request (docs/operations.md) ---
    # Identifications waiting for a compute thread beyond those computing; more
    # are refused at once (503 + Retry-After). As many as the threads: an
    # admitted request waits at most about one identification's time.
    identify_queue: int = Field(
        default_factory=lambda data: data["compute_threads"], ge=0, le=10_000
    )
    # Worker processes preparing uploads (read, check, simulate), apart from
    # the identify threads. One: two heavy uploads cannot take both cores from reads.
    write_workers: int = Field(default=1, ge=1, le=64)
    # Uploads waiting for a write worker; more are refused at once (503 + Retry-After).
    write_queue: int = Field(default=4, ge=0, le=10_000)
    # Wall-clock budget of preparing one upload; the worker is killed past it
    # (413). The largest structure the simulation limits admit takes ~4 s on 2 idle cores.
    write_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    # Address-space cap of a write worker (its imports take ~0.6 GB of it);
    # an upload that needs more gets 413.
    write_memory_limit_bytes: int = Field(default=1024 * MIB, ge=768 * MIB)
    # Simulation limits, checked before simulating: a structure over them is
    # refused with 413 naming the limit. None: xrdid.sticks' MAX_REFLECTIONS
    # (100,000) and MAX_ATOM_REFLECTIONS (1e8), about 4 s on 2 cores. (Read
    # lazily: the write workers import this module before limiting their threads.)
    max_simulation_reflections: int | None = Field(default=None, ge=1)
    max_simulation_atom_reflections: int | None = Field(default=None, ge=1)
    # Seconds a refused client is told to wait (Retry-After): about the time
    # a queue of identifications takes to drain.
    retry_after_s: int = Field(default=2, ge=1, le=3600)

    # --- Connections (python -m app passes these to uvicorn) ---
    # Request line and headers must arrive within this from the connection's
    # start or the previous response (slowloris); 10 s is generous for any client.
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    # The whole body must arrive within this from the request's start: 60 s
    # lets a 20 MB upload through at 350 kB/s.
    body_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # Idle keep-alive connections are closed after this (uvicorn's default).
    keep_alive_timeout_s: int = Field(default=5, ge=1, le=3600)
    # Connections (and requests) at once; more get 503 from uvicorn. A reverse
    # proxy in front holds the slow clients; this bounds what reaches the app.
    max_connections: int = Field(default=200, ge=1, le=100_000)
    # Longest request head (line + headers): 16 kB is uvicorn's and nginx's default.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # After SIGTERM, requests in progress get this long; then they are
    # cancelled (an upload's worker is killed, nothing is stored).
    shutdown_timeout_s: int = Field(default=10, ge=0, le=3600)

    # --- Forms ---
    # Non-file form fields per request: the largest form (POST /references) has 8.
    max_form_fields: int = Field(default=16, ge=1, le=1000)
    # Bytes of one non-file field: the longest (notes) is 2,000 characters.
    max_form_field_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # Characters of an uploaded file's name (most file systems allow 255).
    max_filename_chars: int = Field(default=255, ge=16, le=4096)

    # ---- LIMS: batch jobs, idempotency, webhooks, audit, logs (docs/lims.md)
    # Jobs, idempotency keys, the audit log and webhook deliveries; default
    # <library>.service.sqlite, next to the library it serves.
    service_store_path: Path | None = None
    # A job is one upload: a rack or a plate of scans, not an archive of years.
    job_max_files: int = Field(default=1000, ge=1, le=JOB_MAX_FILES_CEILING)
    # Body limit of POST /jobs (the files, or the zip, together).
    job_max_body_bytes: int = Field(default=256 * MIB, ge=1024)
    # Scans waiting over all jobs; beyond it POST /jobs answers 429. At the
    # ~5–10 scans/s of 2 cores, 5,000 is under about a quarter of an hour of work.
    job_queue_max_files: int = Field(default=5000, ge=1)
    # Scans per forward pass: 4 is as fast as 16, and a smaller batch is
    # redone sooner after a crash (docs/lims.md, make bench-job-batch).
    job_batch_size: int = Field(default=4, ge=1, le=1024)
    # Batches computed at once; None: XRDID_COMPUTE_THREADS (every core), never more.
    job_workers: int | None = Field(default=None, ge=1, le=256)
    # True: each job worker computes in a process of its own, at lower priority
    # than /identify, with its own copy of the model and the library's index in
    # memory (Python computes the phase analysis one thread at a time, so
    # threads leave cores idle: docs/lims.md). False: on the compute threads
    # that serve /identify, in this process's memory.
    job_processes: bool = True
    # POST /jobs requests in the service at once (each may hold
    # XRDID_JOB_MAX_BODY_BYTES of scans in memory); more get 503 + Retry-After.
    job_submissions: int = Field(default=2, ge=1, le=64)
    # A claimed scan is retried when its worker has not renewed the claim for
    # this long (a killed process); renewed every third of it while working.
    job_lease_s: float = Field(default=30.0, gt=0)
    # Finished jobs (and their results) are kept this long: a week covers a
    # weekend and a LIMS that polls once a day.
    job_retention_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    # An Idempotency-Key is remembered this long: a day covers every client
    # retry policy we know of (the draft leaves it to the server).
    idempotency_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    # Standard Webhooks secret ("whsec_" + base64 of 24–64 random bytes);
    # None: jobs cannot name a callback URL.
    webhook_secret: SecretStr | None = None
    # Hosts callbacks may go to (names, IPs, or "*.example.org"); empty: any
    # host with only public addresses. A host listed here may be private (the
    # LIMS on the lab network); anything else private is refused (SSRF).
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = []
    # Delivery attempts and the first retry's delay; it doubles each time
    # (5 s … ~10 min: 8 attempts span about 21 minutes of receiver downtime).
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_s: float = Field(default=5.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # One JSON object per log line (for log shippers); off: readable text.
    log_json: bool = False

    @field_validator("read_api_keys", "write_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "XRDID_DATABASE_URL must be a postgresql:// URL, e.g. "
                "postgresql://xrdid:PASSWORD@db:5432/xrdid"
            )
        return value

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        check_webhook_secret(value.get_secret_value())
        return value

    @field_validator("device", mode="before")
    @classmethod
    def _empty_device(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_role(self) -> Settings:
        if self.role == "worker" and self.database_url is None:
            raise ValueError(
                "XRDID_ROLE=worker takes its jobs from a shared queue: set XRDID_DATABASE_URL "
                "to the replicas' PostgreSQL database"
            )
        return self

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        if self.require_read_key and not (self.read_api_keys or self.write_api_keys):
            raise ValueError(
                "XRDID_REQUIRE_READ_KEY is set but no XRDID_READ_API_KEYS are configured"
            )
        for key in [*self.read_api_keys, *self.write_api_keys]:
            value = key.get_secret_value()
            weak = value.lower() in _PLACEHOLDER_KEYS or len(value) < MIN_PRODUCTION_KEY_CHARS
            if weak and self.environment == "production":
                raise ValueError(
                    "an API key is a placeholder or shorter than "
                    f"{MIN_PRODUCTION_KEY_CHARS} characters; set real keys for production"
                )
            if weak:
                logger.warning("an API key is weak; fine for local use, refused in production")
        return self

    @property
    def library_location(self) -> Path | str:
        """The library: the database URL when set, else the SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.library_path

    @property
    def service_store_file(self) -> Path:
        return self.service_store_path or self.library_path.with_name(
            self.library_path.name + ".service.sqlite"
        )

    @property
    def service_store_location(self) -> Path | str:
        """Jobs, idempotency keys and the audit log: in the database when set
        (shared by the replicas), else the SQLite file beside the library."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.service_store_file

    @property
    def job_worker_count(self) -> int:
        """Job workers: never more than the compute threads (one per core)."""
        return min(self.job_workers or self.compute_threads, self.compute_threads)

    @property
    def raman_library_file(self) -> Path:
        """The working Raman library: the setting, else next to the XRD library."""
        return self.raman_library_path or self.library_path.with_name("raman_library.sqlite")

    @property
    def raman_library_location(self) -> Path | str:
        """The Raman library: the database URL when set (its own schema there,
        shared by the replicas like the XRD library), else the SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.raman_library_file

    @property
    def raman_index_cache_path(self) -> Path | None:
        """Where a replica caches its Raman search index: beside the XRD one."""
        path = self.index_cache_path
        return None if path is None else path.with_name("raman_" + path.name)

    @property
    def upload_body_limit_bytes(self) -> int:
        """Request body limit: the file plus room for the other form fields."""
        return self.max_upload_bytes + 64 * 1024

    @property
    def simulation_limits(self) -> SimulationLimits:
        from xrdid.sticks import SimulationLimits

        defaults = SimulationLimits()
        return SimulationLimits(
            max_reflections=self.max_simulation_reflections or defaults.max_reflections,
            max_atom_reflections=(
                self.max_simulation_atom_reflections or defaults.max_atom_reflections
            ),
        )

    def key_allows(self, key: str, *, write: bool) -> bool:
        """Whether ``key`` is a valid write key (``write``) or a valid read or write key."""
        allowed = self.write_api_keys if write else [*self.read_api_keys, *self.write_api_keys]
        given = key.encode()
        # Compare against every key, in constant time each.
        return any(secrets.compare_digest(given, k.get_secret_value().encode()) for k in allowed)
