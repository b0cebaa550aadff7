"""``python -m pytomo.rrd [-f DB | -d DIR] [--utc|--local]``: the same as start_server.py --rebuild-rrd."""

import sys

from pytomo.cli import server_main

if __name__ == "__main__":
    sys.exit(server_main(["--rebuild-rrd", *sys.argv[1:]]))
