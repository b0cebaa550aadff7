"""``python -m pytomo`` and the one-file executable: the dispatcher of pytomo/cli (``pytomo --help``)."""

import sys

from pytomo.cli import main

if __name__ == "__main__":
    sys.exit(main())
