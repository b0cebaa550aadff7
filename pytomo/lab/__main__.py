"""``python -m pytomo.lab``: an alias of ``pytomo lab`` (run the lab alone, print its addresses, serve)."""

import sys

from pytomo.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("lab", sys.argv[1:], prog="python -m pytomo.lab"))
