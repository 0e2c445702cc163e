"""Multipart request bodies as single flat models: the file fields beside
the options, so the OpenAPI schema is one object per body (no ``allOf``)
and client generators give their upload models a ``file`` field.

Files are declared ``format: binary`` as well as OpenAPI 3.1's
``contentMediaType``: generators (openapi-python-client among them) only
recognise the former as a file; ``minLength: 1`` says an empty file is
refused (schema-driven fuzzers then know it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import UploadFile
from pydantic import Field, WithJsonSchema

from app.models import IdentifyForm, ReferenceCreateForm
from xrdid.readers import SUPPORTED_FORMATS

__all__ = ["BinaryFile", "IdentifyUpload", "ReferenceUpload"]

BinaryFile = Annotated[
    UploadFile,
    WithJsonSchema(
        {
            "type": "string",
            "format": "binary",
            "contentMediaType": "application/octet-stream",
            "minLength": 1,
        }
    ),
]

PATTERN_FILE_HELP = (
    "The measured XRD pattern or Raman spectrum, in any supported format: "
    + " ".join(SUPPORTED_FORMATS)
    + " (detected from the content)"
)
REFERENCE_FILE_HELP = (
    "A crystal structure (CIF, BGMN .str: simulated on the model grid), a measured "
    "pattern of a known material or a Raman spectrum of a known mineral (any supported "
    "format; needs 'name')"
)


class IdentifyUpload(IdentifyForm):
    """POST /identify: a pattern file and the options of its identification."""

    plot: bool = Field(
        default=False,
        description="Answer with a PNG overlay of the scan and the phases instead of JSON "
        "(as `Accept: image/png` does)",
    )
    file: BinaryFile = Field(description=PATTERN_FILE_HELP)


class ReferenceUpload(ReferenceCreateForm):
    """POST /references: a structure or pattern file and its metadata."""

    file: BinaryFile = Field(description=REFERENCE_FILE_HELP)
