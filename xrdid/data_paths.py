"""Where the shared public data lives (never copied into the project).

``XRDID_DATA_DIR`` overrides the default ``../shared/data`` next to the
project root.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """The folder holding ``structures/`` and ``patterns/``."""
    configured = os.environ.get("XRDID_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return (PROJECT_ROOT.parent / "shared" / "data").resolve()
