"""``python -m pytomo.p1203_cli DB``: export the P.1203 inputs of a run; ``--score`` runs a user-installed itu-p1203."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys


def main(argv: list[str] | None = None) -> int:
    """Print one JSON object per video: its id, its P.1203 input and, with --score, the model's output."""
    parser = argparse.ArgumentParser(prog="python -m pytomo.p1203_cli", description=__doc__)
    parser.add_argument("database", help="a run database")
    parser.add_argument("--video", help="only this video id")
    parser.add_argument("--score", action="store_true",
                        help="score with the itu-p1203 package, which you install yourself (non-commercial licence)")
    args = parser.parse_args(argv)
    model = None
    if args.score:
        try:
            from itu_p1203 import P1203Standalone  # noqa: PLC0415 - optional, never shipped
        except ImportError:
            print("p1203: error: the itu-p1203 package is not installed; it is not on PyPI and its licence is for "
                  "non-commercial research only: install it yourself to use --score", file=sys.stderr)
            return 2
        model = P1203Standalone
    try:
        conn = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True)
        rows = conn.execute(
            "SELECT v.video_id, d.id, d.p1203_input_json FROM downloads d JOIN videos v ON v.id = d.video_row_id"
            " WHERE d.p1203_input_json IS NOT NULL AND (? IS NULL OR v.video_id = ?) ORDER BY d.id",
            (args.video, args.video)).fetchall()
    except sqlite3.Error as exc:
        print(f"p1203: error: cannot read {args.database}: {exc}", file=sys.stderr)
        return 2
    for video_id, download_id, text in rows:
        data = json.loads(text)
        out = {"video_id": video_id, "download_id": download_id, "input": data}
        if model is not None:
            out["score"] = model(data).calculate_complete()
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
