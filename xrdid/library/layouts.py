"""What differs between the libraries of two techniques.

A library holds the references of one technique (its own SQLite file, FAISS
index and model: the Raman model has its own grid and embedding). The code
is the same; the layout says the technique's profile grid, what row of each
profile the search keeps in memory, where its reference ids start and
whether its search may be approximate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.grid import MODEL_GRID
from xrdid.raman.grid import RAMAN_GRID
from xrdid.ranking.profile_search import coarse_rows
from xrdid.technique import Technique

__all__ = ["LAYOUTS", "RAMAN_FIRST_ID", "LibraryLayout"]

# Raman references get ids above 10⁹, XRD ones from 1: an id names one
# reference across the service's libraries (an XRD library never nears 10⁹).
RAMAN_FIRST_ID = 1_000_000_000


def _whole(profiles: NDArray[np.floating]) -> NDArray[np.float32]:
    """Raman rows: the profiles themselves (the Raman ranking's hit quality
    index and correlation scan them whole, 6.8 kB a reference)."""
    return np.ascontiguousarray(np.atleast_2d(profiles), dtype=np.float32)


@dataclass(frozen=True)
class LibraryLayout:
    technique: Technique
    profile_points: int  # points of a stored profile (the technique's model grid)
    first_id: int  # reference ids start after this
    # Profiles (n, profile_points) → the rows the search keeps in memory.
    search_rows: Callable[[NDArray[np.floating]], NDArray[np.float32]]
    # Whether a large library may search approximately (IVF lists, 8-bit
    # coarse rows: :class:`~xrdid.library.index.SearchSettings`). Not Raman:
    # its ranking reads every reference's whole profile.
    approximate_search: bool

    def rows(self, profiles: NDArray[np.floating]) -> NDArray[np.float32]:
        return self.search_rows(np.reshape(profiles, (-1, self.profile_points)))


LAYOUTS: dict[Technique, LibraryLayout] = {
    # XRD rows: binned square roots for the coarse profile search.
    Technique.XRD: LibraryLayout(Technique.XRD, MODEL_GRID.n_points, 0, coarse_rows, True),
    Technique.RAMAN: LibraryLayout(
        Technique.RAMAN, RAMAN_GRID.n_points, RAMAN_FIRST_ID, _whole, False
    ),
}
