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


class Settings(BaseSettings):
    """Every knob of the service; see SERVICE_README.md for the variables."""

    model_config = SettingsConfigDict(env_prefix="XRDID_", extra="ignore", frozen=True)

    environment: Literal["local", "production"] = "local"
    # The library the service reads and writes; created from the shipped
    # default on first start.
    library_path: Path = Field(default_factory=_default_library_path)
    default_library_path: Path = PROJECT_ROOT / "model_store" / "library.sqlite"
    model_path: Path = PROJECT_ROOT / "model_store" / "regnet1d.pt"
    # Confidence calibration of that model (`python -m indexer calibrate`).
    calibration_path: Path = PROJECT_ROOT / "model_store" / "calibration.json"
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
    # A shared PostgreSQL library (postgresql://user:password@host:port/db) for
    # stateless replicas; unset: the embedded SQLite library at library_path.
    database_url: SecretStr | None = None
    # With database_url: where this replica caches its search index (none: it
    # is rebuilt from the database at every start), and how often it checks
    # for other replicas' writes besides listening for them.
    index_cache_path: Path | None = None
    sync_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Exact search, approximate (IVF lists, 8-bit profile rows), or approximate
    # from approximate_from references ("auto"); see docs/scale-out.md.
    search_mode: Literal["auto", "exact", "approximate"] = "auto"
    approximate_from: int = Field(default=200_000, ge=1)
    search_probe: int = Field(default=64, ge=1)
    profile_probe: int = Field(default=32, ge=1)

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
    def library_location(self) -> Path | str:
        """The library: the database URL when set, else the SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.library_path

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
