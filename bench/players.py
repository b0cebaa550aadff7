"""Real players against the model: every scenario played by a reference player and crawled, in one lab run.

For each video of a lab scenario and each reference player that plays its form (Chromium's own ``<video>`` for
progressive files, dash.js and Shaka Player for DASH, hls.js and Shaka Player for HLS), the lab serves the stream
once to the player in headless Chromium (``pytomo.lab.reference.play``) and once to the crawler, whose playout
model runs the player's profile (``--player P,2015``; for HLS and DASH the profile also drives what is fetched).
The report sets the player's own account (time to start, stalls by the frozen picture and by its events, stall
time, time played, renditions, bytes and requests) beside the profile's and the 2015 model's, and says whether
each profile is within the bounds of issue 23: stall count within 1, total stall time within 0.5 s + 20 %, time
to start within 0.5 s, the same rendition in fixed mode.

Usage: ``.venv/bin/python -m bench.players [--scenario FILE] [--window-s 20] [--players native,dashjs,...]
[--videos ID,...] [--out bench/reports/players]``: writes ``players.md`` and ``players.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytomo.engine import pipeline
from pytomo.engine.analysis import play_profiles
from pytomo.engine.profiles import profile
from pytomo.lab.live import LIST_SIZE
from pytomo.lab.reference import PLAYERS, play, unavailable
from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import VideoSpec, load_scenario
from pytomo.paths import lab_scenarios_dir
from pytomo.results import DownloadAnalysis, PlayoutInput, PlayoutParams
from pytomo.results.reference import PICTURE_STALL_S, PlayerAccount
from pytomo.run import CrawlRun
from pytomo.settings import build

ROOT = Path(__file__).resolve().parents[1]
FORMS = {"progressive": ("native",), "dash": ("dashjs", "shaka"), "hls": ("hlsjs", "shaka")}
STALL_COUNT_SLACK = 1
STALL_TIME_SLACK_S, STALL_TIME_SHARE = 0.5, 0.2
START_SLACK_S = 0.5
LATENCY_SLACK_S = 0.5  # live: latency within one segment duration plus this (each play joins the channel at its
# own moment of the segment cycle, so the same rule lands up to one segment further from the edge)


@dataclass
class Figures:
    """The viewer-level figures of one play, by a player or by a profile of the model."""

    time_to_start_s: float | None
    stall_count: int | None
    stall_total_s: float | None
    played_s: float | None
    rendition: str | None = None  # the video rendition at the end, by its picture height ("360p")
    switches: int | None = None
    bytes: int | None = None
    requests: int | None = None
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (start_s, duration_s)
    latency_start_s: float | None = None  # live: latency to the live edge when playback started
    latency_end_s: float | None = None  # live: ... when the window closed


@dataclass
class Comparison:
    """One video and one player: the player's account, its profile's figures, the 2015 model's, the verdict."""

    video_id: str
    delivery: str
    player: str
    real: Figures | None
    profile: Figures | None
    model_2015: Figures | None
    events_stalls: int | None = None  # stalls the player's own events report (waiting -> playing)
    problems: list[str] = field(default_factory=list)  # bounds not met (empty: the profile agrees)
    error: str | None = None
    on_player_arrivals: Figures | None = None  # the profile over the player's own segment arrivals (HLS/DASH)
    rule_problems: list[str] = field(default_factory=list)  # bounds that profile misses on the player's arrivals
    arrival_gap_s: float | None = None  # the largest difference in one segment's transfer time, player - crawler
    live_segment_s: float | None = None  # a live channel's segment duration (None: on demand)
    # (a segment one play's window cut counts with the time it had taken by then: at least that much)

    @property
    def agrees(self) -> bool:
        """True when the profile is within every bound."""
        return self.error is None and not self.problems


def within(real: Figures, model: Figures, fixed: bool, live_segment_s: float | None = None) -> list[str]:
    """The bounds of issue 23 that ``model`` misses against ``real``, each as one sentence; on a live channel of
    ``live_segment_s`` segments, the latency to the live edge too (issue 18)."""
    out = _latency_problems(real, model, live_segment_s) if live_segment_s is not None else []
    if (real.time_to_start_s is None) != (model.time_to_start_s is None):
        out.append(f"started: player {real.time_to_start_s is not None}, model {model.time_to_start_s is not None}")
    elif real.time_to_start_s is not None and model.time_to_start_s is not None and \
            abs(real.time_to_start_s - model.time_to_start_s) > START_SLACK_S:
        out.append(f"time to start {model.time_to_start_s:.2f} s, player {real.time_to_start_s:.2f} s")
    if real.stall_count is not None and model.stall_count is not None and \
            abs(real.stall_count - model.stall_count) > STALL_COUNT_SLACK:
        out.append(f"stalls {model.stall_count}, player {real.stall_count}")
    if real.stall_total_s is not None and model.stall_total_s is not None and \
            abs(real.stall_total_s - model.stall_total_s) > STALL_TIME_SLACK_S + STALL_TIME_SHARE * real.stall_total_s:
        out.append(f"stall time {model.stall_total_s:.2f} s, player {real.stall_total_s:.2f} s")
    if fixed and real.rendition and model.rendition and real.rendition != model.rendition:
        out.append(f"rendition {model.rendition}, player {real.rendition}")
    return out


def _latency_problems(real: Figures, model: Figures, segment_s: float) -> list[str]:
    """Latency at start and at the end within one segment duration plus LATENCY_SLACK_S."""
    out = []
    for name, ours, theirs in (("at start", model.latency_start_s, real.latency_start_s),
                               ("at the end", model.latency_end_s, real.latency_end_s)):
        if (ours is None) != (theirs is None):
            out.append(f"latency {name}: model {_fmt(ours)} s, player {_fmt(theirs)} s")
        elif ours is not None and theirs is not None and abs(ours - theirs) > segment_s + LATENCY_SLACK_S:
            out.append(f"latency {name} {ours:.2f} s, player {theirs:.2f} s")
    return out


def real_figures(acc: PlayerAccount) -> Figures:
    """A player's figures from its own account: stalls as the picture shows them."""
    stalls = acc.stalls_by_picture
    heights = [r.get("height") for r in acc.renditions if r.get("height")]
    if not heights:  # the picture's own size, as the element reports it
        heights = [s.get("video_height") for s in acc.samples if s.get("video_height")]
    rendition = f"{heights[-1]}p" if heights else None
    return Figures(acc.time_to_start_s, None if stalls is None else len(stalls), acc.stall_time_by_picture_s,
                   acc.played_s, rendition, acc.rendition_switches, acc.bytes_received, acc.request_count,
                   [(s.start_s, s.end_s - s.start_s) for s in stalls or ()], acc.live_latency_start_s,
                   acc.live_latency_end_s)


def _seen(stalls: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The stalls a viewer sees, as the harness counts them: a picture frozen at least PICTURE_STALL_S."""
    return [s for s in stalls if s[1] >= PICTURE_STALL_S - 1e-9]


def model_figures(conn: sqlite3.Connection, profile: str) -> Figures | None:
    """One profile's figures of the crawl's only download, from the run database (stalls as the harness counts)."""
    row = conn.execute("SELECT p.*, d.height AS h, d.rendition_switches AS sw, d.bytes AS b, d.id AS did,"
                       " d.live_latency_start_s AS lat0, d.live_latency_end_s AS lat1"
                       " FROM playouts p JOIN downloads d ON d.id = p.download_id WHERE p.profile = ?"
                       " ORDER BY d.id LIMIT 1", (profile,)).fetchone()
    if row is None:
        return None
    stalls = conn.execute("SELECT start_s, duration_s FROM playout_stalls WHERE playout_id = ? ORDER BY seq",
                          (row["id"],)).fetchall()
    requests = conn.execute("SELECT count(*) FROM segment_requests WHERE download_id = ?", (row["did"],)).fetchone()[0]
    seen = _seen([(s[0], s[1]) for s in stalls])
    started = row["stall_count"] is not None
    return Figures(row["time_to_start_s"], len(seen) if started else None,
                   sum(d for _, d in seen) if started else None, row["played_s"],
                   None if row["h"] is None else f"{row['h']}p", row["sw"], row["b"], requests or 1, seen,
                   row["lat0"], row["lat1"])


class _Inputs:
    """Keeps what the playout model played for each download of a crawl (for the report's raw files)."""

    def __init__(self) -> None:
        self.kept: list[PlayoutInput | None] = []
        self._play = pipeline.play_profiles

    def __enter__(self) -> _Inputs:
        def keep(a: DownloadAnalysis, chosen: Any, driving: str | None = None) -> None:
            self.kept.append(a.playout_input)
            self._play(a, chosen, driving)

        pipeline.play_profiles = keep
        return self

    def __exit__(self, *exc: object) -> None:
        pipeline.play_profiles = self._play


def crawl(lab: Lab, video: VideoSpec, player: str, window_s: float, rendition: str, out: Path) -> Path:
    """Crawl one video of the running lab with the player's profile first; the run database's path."""
    settings = build(overrides={
        "service": "lab", "urls": (lab.page_url(video.id),), "batch": True, "download_time_s": window_s,
        "delay_between_requests_s": 0.0, "ping_count": 1, "database_dir": str(out), "player": f"{player},2015",
        "rendition": rendition if rendition != "auto" else "highest", "abr": "fixed" if rendition != "auto" else
        "player", "max_rounds": 1, "label": f"players-{player}"})
    return CrawlRun(settings, lab=lab).execute(lambda level, path: None).db_path


def compare(lab: Lab, video: VideoSpec, player: str, window_s: float, rendition: str, out: Path) -> Comparison:
    """One video played by ``player`` and crawled with its profile, in this lab run."""
    cmp = Comparison(video.id, video.delivery, player, None, None, None,
                     live_segment_s=video.segment_s if video.live else None)
    why = unavailable(player)
    if why:
        cmp.error = why
        return cmp
    acc = play(player, lab.stream_url(video.id), window_s=window_s, host_map=lab.host_map(), rendition=rendition)
    cmp.real = real_figures(acc)
    cmp.events_stalls = None if acc.stalls_by_events is None else len(acc.stalls_by_events)
    with _Inputs() as inputs:
        db = crawl(lab, video, player, window_s, rendition, out)
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"{video.id}.{player}.player.json").write_text(json.dumps(acc.to_dict()), encoding="utf-8")
    (raw / f"{video.id}.{player}.model.json").write_text(json.dumps(
        [None if i is None else asdict(i) for i in inputs.kept]), encoding="utf-8")
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        cmp.profile, cmp.model_2015 = model_figures(conn, player), model_figures(conn, "2015")
    finally:
        conn.close()
    if cmp.profile is None:
        cmp.error = "the crawl stored no playout for the profile"
    else:
        cmp.problems = within(cmp.real, cmp.profile, rendition != "auto", cmp.live_segment_s)
    if not video.live:  # live: the two plays joined the channel at other moments, fetching other segments
        _on_player_arrivals(cmp, acc, db, player)
    return cmp


@dataclass(frozen=True)
class CrawledSegment:
    """One media segment the crawler requested: what it holds, and how long it took (None: cut by the window)."""

    stream: str
    media_start_s: float
    media_duration_s: float
    trequest_s: float
    transfer_s: float | None


def _segments(db: Path) -> tuple[dict[str, CrawledSegment], float | None]:
    """The crawl's media segments by URL, those its window cut included (their media times are known all the
    same), and the end of the crawl's window on its clock (its profile's playout end)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT url, stream, media_start_s, media_duration_s, trequest_s, tfinish_s, complete"
                            " FROM segment_requests WHERE kind = 'media' AND media_start_s IS NOT NULL"
                            " ORDER BY seq").fetchall()
        end = conn.execute("SELECT max(end_s) FROM playouts").fetchone()[0]
    finally:
        conn.close()
    out: dict[str, CrawledSegment] = {}
    for url, stream, first, duration, trequest, tfinish, complete in rows:
        if url not in out or out[url].transfer_s is None:  # a URL asked twice: its complete request
            out[url] = CrawledSegment(stream, first, duration or 0.0, trequest,
                                      tfinish - trequest if complete and tfinish is not None else None)
    return out, end


def player_arrivals(acc: PlayerAccount, segments: dict[str, CrawledSegment]
                    ) -> tuple[tuple[float, int, float, float], ...]:
    """``(t_s, bytes, video_s, audio_s)`` as the player received its segments (each playable when its request
    ended, in media order: a buffer's end is the end of its contiguous segments from 0). A segment is known by its
    URL among the crawler's requests, whether or not the crawler's own request of it ended within its window."""
    got: dict[str, list[tuple[float, float]]] = {"video": [], "audio": []}
    events, received = [], 0
    for req in sorted((r for r in acc.requests if r.get("end_s") is not None), key=lambda r: r["end_s"]):
        received += req.get("bytes") or 0
        seg = segments.get(req["url"])
        if seg is None or seg.stream not in got or not req.get("finished"):
            continue
        got[seg.stream].append((seg.media_start_s, seg.media_start_s + seg.media_duration_s))
        ends = {name: _contiguous(spans) for name, spans in got.items()}
        events.append((req["end_s"], received, ends["video"], ends["audio"]))
    return tuple(events)


def arrival_gap_s(acc: PlayerAccount, segments: dict[str, CrawledSegment], crawl_end_s: float | None
                  ) -> float | None:
    """The largest difference in one segment's transfer time between the two plays. Where one side's window cut
    the segment and the other's did not, the cut side took at least until its window's end: that lower bound
    counts (the segment arrived within the window in one play and not in the other)."""
    diffs = []
    for r in acc.requests:
        seg = segments.get(r["url"])
        if seg is None or r.get("start_s") is None:
            continue
        done = bool(r.get("finished")) and r.get("end_s") is not None
        player_s = r["end_s"] - r["start_s"] if done else None
        if player_s is not None and seg.transfer_s is not None:
            diffs.append(abs(player_s - seg.transfer_s))
        elif player_s is not None and crawl_end_s is not None:  # the crawler's window cut it
            diffs.append(max(0.0, crawl_end_s - seg.trequest_s - player_s))
        elif seg.transfer_s is not None and r.get("end_s") is None:  # the player's window cut it
            diffs.append(max(0.0, acc.window_s - r["start_s"] - seg.transfer_s))
    return max(diffs) if diffs else None


def _contiguous(spans: list[tuple[float, float]]) -> float:
    end = 0.0
    for first, last in sorted(spans):
        if first > end + 0.05:
            break
        end = max(end, last)
    return end


def _on_player_arrivals(cmp: Comparison, acc: PlayerAccount, db: Path, player: str) -> None:
    """The profile's rules alone: its playout over the player's own arrivals, and how far the arrivals differ."""
    if cmp.delivery == "progressive" or cmp.real is None:
        return  # a progressive file's bytes arrive without per-segment times in the player's account
    segments, crawl_end_s = _segments(db)
    av = player_arrivals(acc, segments)
    if not av:
        return
    prof = profile(player, build())
    events = tuple((t, b, min(v, a)) for t, b, v, a in av)
    a = DownloadAnalysis(transfer=None, params=PlayoutParams())  # type: ignore[arg-type]
    a.playout_input = PlayoutInput(events, acc.window_s, None, False, av)
    play_profiles(a, (prof,))
    cmp.on_player_arrivals = _from_result(a.profile_playouts[0].result)
    if cmp.on_player_arrivals is not None:
        cmp.rule_problems = within(cmp.real, cmp.on_player_arrivals, fixed=False)
    cmp.arrival_gap_s = arrival_gap_s(acc, segments, crawl_end_s)


def run(scenario_path: Path, window_s: float, players: tuple[str, ...], videos: tuple[str, ...] = (),
        rendition: str = "highest", out: Path | None = None) -> list[Comparison]:
    """Every (video, player) pair of the scenario, in one lab run."""
    scenario = load_scenario(scenario_path)
    work = (out / "runs") if out else Path(tempfile.mkdtemp(prefix="pytomo-players-"))
    results = []
    with Lab(scenario, truth_path=(out / "truth.jsonl") if out else None) as lab:
        wait_live_windows(lab)
        for video in lab.scenario.videos:  # without those the lab left out (no nginx or packager here)
            if videos and video.id not in videos:
                continue
            for player in FORMS[video.delivery]:
                if player in players:
                    results.append(compare(lab, video, player, window_s, rendition, work))
    return results


def wait_live_windows(lab: Lab) -> None:
    """Wait until every live channel lists a full window: a viewer joins a channel already running."""
    for channel in lab.live.values():
        channel.wait_ready(segments=LIST_SIZE, timeout_s=60)


def replay(raw: Path) -> list[Comparison]:
    """The comparisons of an earlier run (its ``raw/`` files) with the profiles as they are now: the same arrivals
    played again by the model, for tuning thresholds without playing anything (the fetch pattern stays that run's)."""
    results = []
    for path in sorted(raw.glob("*.player.json")):
        video_id, player = path.name.removesuffix(".player.json").rsplit(".", 1)
        acc = PlayerAccount.from_dict(json.loads(path.read_text(encoding="utf-8")))
        inputs = json.loads((raw / f"{video_id}.{player}.model.json").read_text(encoding="utf-8"))
        cmp = Comparison(video_id, "hls" if video_id.startswith("hls") else "dash" if video_id.startswith("dash")
                         else "progressive", player, real_figures(acc), None, None,
                         None if acc.stalls_by_events is None else len(acc.stalls_by_events))
        first = next((i for i in inputs if i), None)
        if first is None:
            cmp.error = "the crawl had no playout"
        else:
            a = DownloadAnalysis(transfer=None, params=PlayoutParams())  # type: ignore[arg-type]
            a.playout_input = PlayoutInput(
                tuple(map(tuple, first["events"])), first["end_s"], first["media_duration_s"], first["complete"],
                tuple(map(tuple, first.get("av_events") or ())))
            play_profiles(a, (profile(player, build()), profile("2015", build())))
            cmp.profile, cmp.model_2015 = (_from_result(pp.result) for pp in a.profile_playouts)
            if cmp.real is not None and cmp.profile is not None:
                cmp.problems = within(cmp.real, cmp.profile, fixed=False)
        results.append(cmp)
    return results


def _from_result(r: Any) -> Figures | None:
    if r is None:
        return None
    seen = _seen([(s.start_s, s.duration_s) for s in r.stalls])
    return Figures(r.time_to_start_s, len(seen) if r.started else None,
                   sum(d for _, d in seen) if r.started else None, r.played_s, stalls=seen)


def _latency(f: Figures) -> str:
    """Latency to the live edge at start and at the end ("–" on demand)."""
    if f.latency_start_s is None and f.latency_end_s is None:
        return "–"
    return f"{_fmt(f.latency_start_s)} → {_fmt(f.latency_end_s)}"


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def report(results: list[Comparison], window_s: float, rendition: str) -> str:
    """The side-by-side report, in markdown."""
    head = ["video", "player", "who", "start s", "stalls", "stall s", "played s", "rendition", "bytes", "requests",
            "latency s"]
    lines = [f"# Reference players against the model ({window_s:g} s window, rendition {rendition})", "",
             "Stalls of a real player are those of its picture (frozen while not paused); its events' count is in "
             "brackets. `profile` is the model with that player's profile; `2015` is the 2015 model.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in results:
        if c.error:
            lines.append(f"| {c.video_id} | {c.player} | error | {c.error} |")
            continue
        for who, f in (("player", c.real), ("profile", c.profile), ("profile, player's arrivals",
                                                                    c.on_player_arrivals), ("2015", c.model_2015)):
            if f is None:
                continue
            stalls = _fmt(f.stall_count) + (f" ({c.events_stalls})" if who == "player" else "")
            lines.append(f"| {c.video_id} | {c.player} | {who} | {_fmt(f.time_to_start_s)} | {stalls} | "
                         f"{_fmt(f.stall_total_s)} | {_fmt(f.played_s)} | {_fmt(f.rendition)} | {_fmt(f.bytes)} | "
                         f"{_fmt(f.requests)} | {_latency(f)} |")
    agree = sum(c.agrees for c in results)
    rules = [c for c in results if c.on_player_arrivals is not None]
    lines += ["", f"Profiles within every bound over the crawler's arrivals: {agree} of {len(results)}; over the "
              f"player's own arrivals (HLS/DASH): {sum(not c.rule_problems for c in rules)} of {len(rules)}.", ""]
    lines += [f"- {c.video_id} / {c.player}: " + "; ".join(c.problems or [c.error or ""])
              + ("" if c.arrival_gap_s is None else f" (segments arrived up to {c.arrival_gap_s:.2f} s apart)")
              for c in results if not c.agrees]
    lines += [f"- {c.video_id} / {c.player}, on the player's arrivals: " + "; ".join(c.rule_problems)
              for c in rules if c.rule_problems]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write ``players.md`` and ``players.json``."""
    ap = argparse.ArgumentParser(prog="python -m bench.players", description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, default=lab_scenarios_dir() / "players.toml")
    ap.add_argument("--window-s", type=float, default=20.0)
    ap.add_argument("--players", default=",".join(PLAYERS))
    ap.add_argument("--videos", default="")
    ap.add_argument("--rendition", default="highest")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "reports" / "players")
    ap.add_argument("--replay", type=Path, help="play an earlier run's raw/ files again with the current profiles")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if a.replay:
        print(report(replay(a.replay), a.window_s, "as played"))
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    results = run(a.scenario, a.window_s, tuple(a.players.split(",")), tuple(v for v in a.videos.split(",") if v),
                  a.rendition, a.out)
    text = report(results, a.window_s, a.rendition)
    (a.out / "players.md").write_text(text, encoding="utf-8")
    (a.out / "players.json").write_text(json.dumps([asdict(c) for c in results], indent=1), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
