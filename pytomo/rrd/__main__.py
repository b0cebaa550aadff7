"""``python -m pytomo.rrd [-f DB | -d DIR] [--tz ZONE | --utc]``: an alias of ``pytomo rrd``."""

import sys

from pytomo.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("rrd", sys.argv[1:], prog="python -m pytomo.rrd"))
