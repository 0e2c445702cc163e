"""Dependencies of the routes, as ``Annotated`` aliases (tests override them)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from app.core.background import Background
from app.core.config import Settings
from app.core.errors import (
    BadRequestError,
    FormFieldError,
    InvalidApiKeyError,
    MissingApiKeyError,
    ServiceNotReadyError,
)
from app.core.state import ServiceState
from xrdid.embedder import Embedder
from xrdid.library import RAMAN_FIRST_ID, Library
from xrdid.raman.search import RamanSearch
from xrdid.technique import Technique

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A write key adds or deletes references and reads the audit log; reads "
    "need a read or write key only where the server requires it",
)


def get_service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


ServiceDep = Annotated[ServiceState, Depends(get_service)]


def get_settings(service: ServiceDep) -> Settings:
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_library(service: ServiceDep) -> Library:
    if service.library is None:
        raise service.not_ready()
    return service.library


LibraryDep = Annotated[Library, Depends(get_library)]


def get_embedder(service: ServiceDep) -> Embedder:
    if service.embedder is None:
        raise service.not_ready()
    return service.embedder


EmbedderDep = Annotated[Embedder, Depends(get_embedder)]


def get_background(service: ServiceDep) -> Background:
    if service.background is None:
        raise ServiceNotReadyError(
            "the service is starting; retry shortly", headers={"Retry-After": "5"}
        )
    return service.background


BackgroundDep = Annotated[Background, Depends(get_background)]


def get_raman(service: ServiceState) -> RamanSearch:
    """The Raman model and library, or why there are none (:meth:`ServiceState.raman_search`)."""
    return service.raman_search()


def library_for(service: ServiceState, technique: Technique) -> Library:
    """The library of a technique (503 or 422 as :func:`get_raman` when absent)."""
    if technique is Technique.RAMAN:
        return get_raman(service).library
    return get_library(service)


def library_of_id(service: ServiceState, reference_id: int) -> Library:
    """The library a reference id belongs to: Raman ids start above RAMAN_FIRST_ID."""
    return library_for(service, Technique.RAMAN if reference_id > RAMAN_FIRST_ID else Technique.XRD)


def api_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> str | None:
    """The request's key: one X-API-Key header, never a guess between several."""
    sent = request.headers.getlist(API_KEY_HEADER)
    if len(sent) > 1:
        raise BadRequestError(
            f"the request has {len(sent)} {API_KEY_HEADER} headers; send exactly one"
        )
    return key


ApiKey = Annotated[str | None, Depends(api_key)]

# Query parameters people put keys in; named in the 401 (URLs end up in logs).
_KEY_PARAMETERS = ("api_key", "apikey", "key", "x-api-key", "token")


def _missing(action: str, request: Request) -> MissingApiKeyError:
    in_url = any(name in request.query_params for name in _KEY_PARAMETERS)
    hint = "; not in the URL, where proxies and logs keep it" if in_url else ""
    return MissingApiKeyError(
        f"{action} needs an API key: send it in the {API_KEY_HEADER} header{hint}",
        headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'},
    )


def require_read_access(request: Request, settings: SettingsDep, key: ApiKey) -> None:
    """Reads are open unless XRDID_REQUIRE_READ_KEY is set; then a read or write key."""
    if not settings.require_read_key:
        return
    if not key:
        raise _missing("reading from this server", request)
    if not settings.key_allows(key, write=False):
        raise InvalidApiKeyError("the API key is not valid on this server")


def require_write_access(request: Request, settings: SettingsDep, key: ApiKey) -> None:
    """Writes always need a write key."""
    if not key:
        raise _missing("changing the library", request)
    if not settings.write_api_keys:
        raise InvalidApiKeyError(
            "writes are disabled on this server: no write API key is configured "
            "(the operator sets XRDID_WRITE_API_KEYS)"
        )
    if not settings.key_allows(key, write=True):
        raise InvalidApiKeyError("the API key does not allow changing the library")


ReadAccess = Depends(require_read_access)
WriteAccess = Depends(require_write_access)

# OpenAPI of the read routes: an empty security requirement says the key is
# optional (FastAPI marks it required). app.main.openapi_schema reads it: a
# server with XRDID_REQUIRE_READ_KEY keeps only the key; an open one drops the
# requirement (generators demand an authenticated client for any security).
OPTIONAL_KEY: dict[str, object] = {"security": [{}]}


async def _check_parts(
    request: Request, settings: Settings, repeatable: frozenset[str], hint: str
) -> None:
    """A form names each field once (but ``repeatable`` ones) and its files'
    names are of sane length (the parser would keep one of two parts silently)."""
    form = await request.form()  # parsed already for the route; cached on the request
    counts = Counter(name for name, _ in form.multi_items())
    repeated = sorted(name for name, n in counts.items() if n > 1 and name not in repeatable)
    if repeated:
        raise FormFieldError(
            f"the form field(s) {', '.join(map(repr, repeated))} appear more than once; "
            f"send each field once ({hint})"
        )
    for _, value in form.multi_items():
        filename = getattr(value, "filename", None) or ""
        if len(filename) > settings.max_filename_chars:
            raise FormFieldError(
                f"the file name is {len(filename)} characters long; at most "
                f"{settings.max_filename_chars} are accepted (XRDID_MAX_FILENAME_CHARS)"
            )


async def single_parts(request: Request, settings: SettingsDep) -> None:
    await _check_parts(request, settings, frozenset(), "one file per request, in the field 'file'")


async def job_parts(request: Request, settings: SettingsDep) -> None:
    await _check_parts(
        request, settings, frozenset({"files"}), "the scans go in 'files', one part each"
    )


SingleParts = Depends(single_parts)
JobParts = Depends(job_parts)
