"""POST /identify: which reference materials a measured pattern matches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File

from app.api.deps import EmbedderDep, LibraryDep, ReadAccess, ServiceDep, SettingsDep
from app.api.uploads import read_upload
from app.core.errors import problem_responses
from app.forms import IdentifyUpload
from app.models import IdentifyResponse
from xrdid.identify import identify as run_identification

router = APIRouter(prefix="/identify", tags=["identify"], dependencies=[ReadAccess])


@router.post(
    "",
    summary="Identify the material of a measured pattern",
    response_description="Candidates, best first, with what was used to find them",
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
)
async def identify(
    form: Annotated[IdentifyUpload, File()],
    service: ServiceDep,
    settings: SettingsDep,
    library: LibraryDep,
    embedder: EmbedderDep,
) -> IdentifyResponse:
    """Read the pattern, remove its background, embed it and return the most
    similar references: the embedding's nearest (cosine ``similarity``),
    ranked by ``score``, which adds their weighted ``profile_correlation`` (a
    Pearson r of the profiles with a 2θ shift and a lattice strain fitted,
    which tells look-alikes apart).

    The scan is compared on the model grid (Cu Kα1, 2θ 5–90°); a scan at
    another wavelength is mapped through d-spacing, and one that covers only
    part of the grid is compared on that part (a warning says which).
    """
    data = await read_upload(form.file, settings)
    result = await service.run_cpu(
        run_identification,
        data,
        form.file.filename,
        embedder,
        library,
        form.options(settings.default_top_k),
        max_bytes=settings.max_upload_bytes,
    )
    service.metrics.observe_identification(result.timings)
    return IdentifyResponse.from_identification(result, form.sample_id)
