"""Crystal-structure readers: CIF and BGMN .str files to reference structures.

``read_structures`` returns every usable structure in a file (a CIF may hold
several data blocks); ``read_structure`` returns the first. Both raise
StructureReadError, with the reason, when a file holds none. Every structure
passes the sanity checks of :mod:`xrdid.structures.checks`.
"""

from xrdid.structures.checks import MAX_SITES
from xrdid.structures.model import ReferenceStructure
from xrdid.structures.reader import STRUCTURE_SUFFIXES, read_structure, read_structures

__all__ = [
    "MAX_SITES",
    "STRUCTURE_SUFFIXES",
    "ReferenceStructure",
    "read_structure",
    "read_structures",
]
