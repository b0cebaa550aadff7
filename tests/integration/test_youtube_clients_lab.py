"""YouTube's clients recorded per video (issue 19), on a ``-s youtube --lab`` crawl of the recordings that say, in
yt-dlp's own lines, that the web client was SABR-only, tv_samsung wanted a GVS PO token and visionos answered with
URLs (measured), and of two whose every client was skipped: stored in the schema, with their own outcomes, shown on
the video page and exported; the media requests carried the measured client's own User-Agent, as the lab's truth
log shows."""

from __future__ import annotations

import json
import re

import requests

from pytomo.lab.recorded import recordings
from pytomo.readers.tables import tables_of
from pytomo.web.catalog import run_id
from tests.conftest import connect, database_of, run_crawler
from tests.web.conftest import Server

MEASURED, SABR, GATED = "LabClient13", "LabSabrOn11", "LabPotReq12"


def _ua() -> str:
    entry = next(v for v in recordings("youtube")["videos"] if v["id"] == MEASURED)
    return entry["ytdlp"]["info"]["formats"][0]["http_headers"]["User-Agent"]


def test_clients_are_stored_shown_and_exported(tmp_path):
    truth = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", "youtube", "--lab", "-b", "-D", "1", "-n", "1", "-S", "0", "--database-dir",
                        str(tmp_path), "--lab-truth", str(truth),
                        *(f"https://www.youtube.com/watch?v={v}" for v in (MEASURED, SABR, GATED))])
    db = database_of(proc)
    conn = connect(db)
    rows = {r["video_id"]: r for r in conn.execute("SELECT * FROM videos")}
    ok = rows[MEASURED]
    assert ok["status"] == "ok", ok["error_message"]
    assert (ok["yt_clients_asked"], ok["yt_clients_answered"]) == ("tv_samsung,visionos,web",) * 2
    assert (ok["yt_clients_sabr_only"], ok["yt_po_token_skipped"]) == ("web", "tv_samsung:https")
    assert (ok["yt_measured_client"], ok["yt_measured_po_token"], ok["yt_measured_user_agent"]) == (
        "VISIONOS", 0, _ua())
    # the measured client's own headers on every media request, as the lab's server logged them
    served = [json.loads(line) for line in truth.read_text().splitlines() if line.strip()]
    mine = [t for t in served if t["video_id"] == "lab-40m" and t["method"] == "GET"]
    assert mine and {t["user_agent"] for t in mine} == {_ua()}
    for vid, kind, fact in ((SABR, "sabr_only", "yt_clients_sabr_only"), (GATED, "po_token_required",
                                                                          "yt_po_token_skipped")):
        row = rows[vid]
        assert (row["status"], row["error_kind"]) == ("error", kind), row["error_message"]
        assert row[fact] and row["yt_measured_client"] is None
    assert rows[SABR]["yt_clients_sabr_only"] == "web,tv_samsung,visionos"
    assert rows[GATED]["yt_po_token_skipped"] == "tv_samsung:https,visionos:https"
    # the export carries them
    exported = {r["video_id"]: r for r in tables_of(db)["videos"].to_pylist()}
    assert exported[MEASURED]["yt_measured_client"] == "VISIONOS"
    assert exported[GATED]["yt_po_token_skipped"] == ok["yt_po_token_skipped"] + ",visionos:https"
    # and the video page shows them, escaped
    srv = Server(["-d", str(tmp_path), "-f", str(db)], tmp_path / "cache")
    try:
        page = requests.get(f"{srv.url}video/{ok['id']}", params={"db": run_id(db)}, timeout=30)
        assert page.status_code == 200
        text = re.sub(r"\s+", " ", page.text)
        assert "asked: tv_samsung,visionos,web" in text and "SABR-only: web" in text
        assert "skipped for want of a PO token: tv_samsung:https" in text
        assert "made for the client VISIONOS, without a PO token" in text
    finally:
        srv.stop()
