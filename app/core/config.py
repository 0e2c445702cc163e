"""Service settings: one pydantic-settings class, read from ``XRDID_*`` variables.

Built when the app is created (never at import), so tests pass their own.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from xrdid.data_paths import PROJECT_ROOT

logger = logging.getLogger(__name__)

MIB = 1024 * 1024

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
    """Every knob of the service; see SERVICE_README.md for the variables."""

    model_config = SettingsConfigDict(env_prefix="XRDID_", extra="ignore", frozen=True)

    environment: Literal["local", "production"] = "local"
    # The library the service reads and writes; created from the shipped
    # default on first start.
    library_path: Path = Field(default_factory=_default_library_path)
    default_library_path: Path = PROJECT_ROOT / "model_store" / "library.sqlite"
    model_path: Path = PROJECT_ROOT / "model_store" / "regnet1d.pt"
    device: str | None = None  # "cpu", "cuda", "cuda:1"; None: CUDA when present
    # Threads per torch call: 1 lets concurrent requests use the cores instead
    # of fighting over them (measured: 2 threads per call doubles p95 on 2 cores).
    torch_threads: int = Field(default=1, ge=1, le=256)
    # Requests doing CPU work (read, preprocess, embed, search) at once.
    compute_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
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

    # ---- LIMS: batch jobs, idempotency, webhooks, audit, logs (docs/lims.md)
    # Jobs, idempotency keys, the audit log and webhook deliveries; default
    # <library>.service.sqlite, next to the library it serves.
    service_store_path: Path | None = None
    # A job is one upload: a rack or a plate of scans, not an archive of years.
    job_max_files: int = Field(default=1000, ge=1, le=100_000)
    # Body limit of POST /jobs (the files, or the zip, together).
    job_max_body_bytes: int = Field(default=256 * MIB, ge=1024)
    # Scans waiting over all jobs; beyond it POST /jobs answers 429. At the
    # ~5–10 scans/s of 2 cores, 5,000 is under about a quarter of an hour of work.
    job_queue_max_files: int = Field(default=5000, ge=1)
    # Scans per forward pass: bigger batches amortise the model and the search
    # but hold a compute slot longer (an interactive /identify waits for one batch).
    job_batch_size: int = Field(default=16, ge=1, le=1024)
    # Batches computed at once; None: XRDID_COMPUTE_THREADS (every core).
    job_workers: int | None = Field(default=None, ge=1, le=256)
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
    def service_store_file(self) -> Path:
        return self.service_store_path or self.library_path.with_name(
            self.library_path.name + ".service.sqlite"
        )

    @property
    def job_worker_count(self) -> int:
        return self.job_workers or self.compute_threads

    @property
    def upload_body_limit_bytes(self) -> int:
        """Request body limit: the file plus room for the other form fields."""
        return self.max_upload_bytes + 64 * 1024

    def key_allows(self, key: str, *, write: bool) -> bool:
        """Whether ``key`` is a valid write key (``write``) or a valid read or write key."""
        allowed = self.write_api_keys if write else [*self.read_api_keys, *self.write_api_keys]
        given = key.encode()
        # Compare against every key, in constant time each.
        return any(secrets.compare_digest(given, k.get_secret_value().encode()) for k in allowed)
