"""Dependencies of the routes, as ``Annotated`` aliases (tests override them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader

from app.core.background import Background
from app.core.config import Settings
from app.core.errors import InvalidApiKeyError, MissingApiKeyError, ServiceNotReadyError
from app.core.state import ServiceState
from xrdid.embedder import Embedder
from xrdid.library import Library

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A write key: needed to add or delete references and to read the audit log",
)


def get_service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


ServiceDep = Annotated[ServiceState, Depends(get_service)]


def get_settings(service: ServiceDep) -> Settings:
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def _not_ready(service: ServiceState) -> ServiceNotReadyError:
    if service.error:
        return ServiceNotReadyError(f"the service failed to start: {service.error}")
    return ServiceNotReadyError(
        f"the service is starting ({service.phase}); retry shortly", headers={"Retry-After": "5"}
    )


def get_library(service: ServiceDep) -> Library:
    if service.library is None:
        raise _not_ready(service)
    return service.library


LibraryDep = Annotated[Library, Depends(get_library)]


def get_embedder(service: ServiceDep) -> Embedder:
    if service.embedder is None:
        raise _not_ready(service)
    return service.embedder


EmbedderDep = Annotated[Embedder, Depends(get_embedder)]

def get_background(service: ServiceDep) -> Background:
    if service.background is None:
        raise ServiceNotReadyError("the service is starting; retry shortly", headers={"Retry-After": "5"})
    return service.background


BackgroundDep = Annotated[Background, Depends(get_background)]

ApiKey = Annotated[str | None, Security(api_key_header)]


def _missing(action: str) -> MissingApiKeyError:
    return MissingApiKeyError(
        f"{action} needs an API key: send it in the {API_KEY_HEADER} header",
        headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'},
    )


# Reads take the key as an optional header parameter, not as a security
# scheme: generators (openapi-python-client) make every operation with a
# security requirement demand an authenticated client, although reads are
# open unless the operator sets XRDID_REQUIRE_READ_KEY.
ReadApiKey = Annotated[
    str | None,
    Header(
        alias=API_KEY_HEADER,
        description="A read or write key; needed only where the server requires keys for reads",
    ),
]


def require_read_access(settings: SettingsDep, key: ReadApiKey = None) -> None:
    """Reads are open unless XRDID_REQUIRE_READ_KEY is set; then a read or write key."""
    if not settings.require_read_key:
        return
    if not key:
        raise _missing("reading from this server")
    if not settings.key_allows(key, write=False):
        raise InvalidApiKeyError("the API key is not valid on this server")


def require_write_access(settings: SettingsDep, key: ApiKey) -> None:
    """Writes always need a write key."""
    if not key:
        raise _missing("changing the library")
    if not settings.write_api_keys:
        raise InvalidApiKeyError(
            "writes are disabled on this server: no write API key is configured "
            "(the operator sets XRDID_WRITE_API_KEYS)"
        )
    if not settings.key_allows(key, write=True):
        raise InvalidApiKeyError("the API key does not allow changing the library")


ReadAccess = Depends(require_read_access)
WriteAccess = Depends(require_write_access)
