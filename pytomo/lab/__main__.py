"""``python -m pytomo.lab``: run the lab alone, print its addresses and serve until stopped."""

from __future__ import annotations

import argparse
import sys
import threading

from pytomo.errors import PytomoError
from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import default_scenario_path, load_scenario


def main(argv: list[str] | None = None) -> int:
    """Start the lab and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m pytomo.lab", description=__doc__)
    parser.add_argument("--scenario", help="scenario file (TOML); default: the built-in default scenario")
    parser.add_argument("--truth", help="write the ground-truth log (JSON lines) to this file")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario or default_scenario_path())
        lab = Lab(scenario, truth_path=args.truth).start()
    except PytomoError as exc:
        print(f"pytomo.lab: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lab.describe()), flush=True)
    print("serving; press Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
