"""``python -m xrdid identify FILES...``: see :mod:`xrdid.cli`."""

import sys

from xrdid.cli import main

if __name__ == "__main__":
    sys.exit(main())
