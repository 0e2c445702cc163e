"""POST /identify: which reference materials a measured pattern matches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, Response

from app.api.deps import (
    OPTIONAL_KEY,
    ReadAccess,
    ServiceDep,
    SettingsDep,
    SingleParts,
)
from app.api.uploads import read_upload
from app.core.errors import problem_responses
from app.forms import IdentifyUpload
from app.models import IdentifyResponse
from xrdid.raman.answer import RamanResult

router = APIRouter(prefix="/identify", tags=["identify"], dependencies=[ReadAccess])


@router.post(
    "",
    summary="Identify what a measured pattern holds",
    response_model=IdentifyResponse,
    response_description="The verdict, the phases with weight percents, the ranked materials "
    "and references, and what was used to find them (JSON); or a PNG overlay",
    responses={
        **problem_responses(400, 401, 403, 408, 413, 415, 422, 503),
        200: {
            "content": {"image/png": {}},
            "description": "With `Accept: image/png` or `plot=true`: the overlay as a picture",
        },
    },
    dependencies=[SingleParts],
    openapi_extra=OPTIONAL_KEY,
)
async def identify(
    request: Request,
    form: Annotated[IdentifyUpload, File()],
    service: ServiceDep,
    settings: SettingsDep,
) -> IdentifyResponse | Response:
    """Read the pattern, remove its background, embed it, rank the library's
    references for it and analyse its phases.

    A Raman spectrum (told from the file, or sent with ``technique=raman``)
    is searched in the Raman library instead (docs/raman.md): ``candidates``
    and ``materials`` list one reference per mineral, ``verdict`` is match or
    no_match (the ranking looks for one mineral: a spectrum of several often
    gets no_match), ``phases`` is empty, and ``elements`` gives the
    probability of each element in the sample.

    - ``phases``: the phases found by search–match with joint refinement
      (scales, 2θ shift, strain and peak width of all phases refined
      together), with weight percents from their reference intensity ratios,
      and each phase's ``lookalikes``: materials that fit the scan about as
      well in its place (an isostructural relative, usually), which the
      sample's chemistry tells apart;
    - ``materials``: the ranking as one answer per material (its other
      references as alternatives) or look-alike family, with a calibrated
      ``confidence``;
    - ``candidates``: the same ranking one reference at a time, as before:
      the embedding's nearest (cosine ``similarity``) ranked by ``score``,
      which adds their weighted ``profile_correlation``;
    - ``verdict``: match, mixture or no_match.

    The scan is compared on the model grid (Cu Kα1, 2θ 5–90°); a scan at
    another wavelength is mapped through d-spacing, and one that covers only
    part of the grid is compared on that part (a warning says which).
    """
    picture = form.plot or "image/png" in request.headers.get("accept", "")
    data = await read_upload(form.file, settings)
    options = form.model_dump(mode="json", exclude={"file", "plot"})
    result, png = await service.identify(data, form.file.filename, options, picture)
    if isinstance(result, Exception):
        raise result
    service.metrics.observe_identification(result.timings)
    if isinstance(result, RamanResult):
        return IdentifyResponse.from_raman(result, form.sample_id)
    if png is not None:
        return Response(png, media_type="image/png")
    return IdentifyResponse.from_identification(result, form.sample_id)
