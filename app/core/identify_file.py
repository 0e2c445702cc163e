"""POST /identify's work on one uploaded file (blocking): the same in a
compute thread of the service and in a compute process (XRDID_IDENTIFY_PROCESSES)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.config import Settings
from app.models import IdentifyForm
from xrdid.identify import Identification
from xrdid.identify_files import FileResult, XrdModel, identify_files
from xrdid.overlay import overlay_png
from xrdid.raman.search import RamanSearch

__all__ = ["identify_file"]


def identify_file(
    settings: Settings,
    xrd_model: Callable[[], XrdModel],
    raman_search: Callable[[], RamanSearch],
    data: bytes,
    filename: str | None,
    options: dict[str, Any],
    picture: bool,
) -> tuple[FileResult, bytes | None]:
    """The file's answer or error, and with ``picture`` the PNG overlay of
    an XRD answer. ``options`` are the request's :class:`IdentifyForm` as JSON."""
    form = IdentifyForm.model_validate(options)
    pipelines = form.pipelines(xrd_model, raman_search, settings.default_top_k, picture)
    reading = form.reading(settings.max_upload_bytes)
    (result,) = identify_files([(data, filename)], reading, pipelines)
    png = None
    if picture and isinstance(result, Identification):
        png = overlay_png(result, form.sample_id)
    return result, png
