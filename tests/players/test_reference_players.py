"""The reference players (pytomo/lab/reference.py) on the players scenario: each library plays what it plays,
frames advance, every request is one the lab served with the same bytes, and 0.6 x the bitrate freezes the picture."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from pytomo.lab.reference import PLAYERS, chromium_exe, play, unavailable
from pytomo.results.reference import PlayerAccount

WINDOW_S = 6.0


@pytest.fixture(scope="module")
def lab():
    """The lab of the players scenario, once for the module; skipped without Chromium or playwright."""
    from pytomo.lab.runtime import Lab
    from pytomo.lab.scenario import load_scenario
    from pytomo.paths import lab_scenarios_dir

    if chromium_exe() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    why = unavailable("native")
    if why:
        pytest.skip(why)
    with Lab(load_scenario(lab_scenarios_dir() / "players.toml")) as running:
        yield running


def _play(lab, player: str, video_id: str, window_s: float = WINDOW_S, rendition: str = "auto") -> PlayerAccount:
    """Play a video of the running lab, skipping when the player or the video is not here."""
    why = unavailable(player)
    if why:
        pytest.skip(why)
    if lab.scenario.video(video_id) is None:
        pytest.skip(f"{video_id} was left out of the lab here (nginx or Shaka Packager missing)")
    return play(player, lab.stream_url(video_id), window_s=window_s, host_map=lab.host_map(), rendition=rendition)


def _key(path: str, video_id: str) -> str:
    """A request's file: the path under /s/ID/ of a segmented video, else the video's own file."""
    marker = f"/s/{video_id}/"
    return path.split(marker, 1)[1] if marker in path else "media"


def _truth(lab, video_id: str) -> dict[str, list[int]]:
    """Body bytes the lab's servers (or nginx's access log) say they sent, by file."""
    out: dict[str, list[int]] = {}
    for rec in lab.truth.records:
        if rec["video_id"] != video_id or rec["method"] != "GET":
            continue
        if rec.get("request_uri"):
            key = _key(urlsplit(rec["request_uri"]).path, video_id)
        else:
            key = rec.get("segment") or "media"
        out.setdefault(key, []).append(rec["bytes_sent"])
    return out


def _check_played(account: PlayerAccount, window_s: float = WINDOW_S, smooth: bool = True) -> None:
    assert not account.errors, account.errors
    assert account.time_to_start_s is not None, account.unmeasured
    assert 0 < account.time_to_start_s < window_s - 1
    shown = [f for f in account.frames if f[0] >= account.time_to_start_s]
    assert len(shown) >= 10 * (window_s - account.time_to_start_s) - 10  # 25 frames/s, most of them seen
    assert [m for _t, m in shown] == sorted(m for _t, m in shown)  # the picture moves forward
    assert account.played_s is not None and account.played_s > 0
    if smooth:
        assert account.played_s > 0.5 * (window_s - account.time_to_start_s)
    assert account.samples and all(-0.2 <= s["t_s"] <= window_s for s in account.samples)
    assert account.requests[0]["start_s"] == 0.0
    assert PlayerAccount.from_dict(account.to_dict()) == account


def _check_requests(lab, account: PlayerAccount, video_id: str) -> None:
    """Every request finished in the window is one the lab served with the same body bytes; one still running
    when the window closed got at most what the server handed to the kernel."""
    deadline = time.monotonic() + 5.0  # a transfer cut short is recorded when the server's next write fails
    while sum(map(len, (truth := _truth(lab, video_id)).values())) < len(account.requests):
        assert time.monotonic() < deadline, (account.requests, truth)
        time.sleep(0.2)
    for req in account.requests:
        key = _key(urlsplit(req["url"]).path, video_id)
        assert req["status"] in (200, 206), req
        if req["finished"]:
            assert req["bytes"] in truth.get(key, []), (req, truth.get(key))
            assert req["start_s"] <= req["response_s"] <= req["end_s"] <= account.window_s + 1
        else:
            assert req["bytes"] <= max(truth.get(key, [0])), (req, truth.get(key))
    assert account.bytes_received == sum(r["bytes"] for r in account.requests)


@pytest.mark.parametrize(("player", "video_id"), [
    ("dashjs", "dash-ffmpeg-x1_5"), ("shaka", "dash-ffmpeg-x1_5"), ("shaka", "hls-ffmpeg-x1_5"),
    ("hlsjs", "hls-ffmpeg-x1_5"), ("native", "mp4-x1_5"), ("native", "webm-slow-start")])
def test_player_plays_and_its_requests_are_the_labs(lab, player, video_id):
    window_s = 8.0 if video_id == "webm-slow-start" else WINDOW_S  # the whole file arrives in about 6.5 s
    account = _play(lab, player, video_id, window_s=window_s)
    _check_played(account, window_s)
    _check_requests(lab, account, video_id)
    assert account.player in PLAYERS and account.player_version
    if player != "native":  # the library told its renditions, and both buffers were reachable
        assert any(r["source"] == player for r in account.renditions)
        ahead = [s for s in account.samples if s["video_buffer_ahead_s"] is not None]
        assert ahead and any(s["audio_buffer_ahead_s"] for s in ahead)


def test_native_at_0_6x_freezes_the_picture(lab):
    account = _play(lab, "native", "mp4-x0_6", window_s=8.0)
    _check_played(account, 8.0, smooth=False)
    _check_requests(lab, account, "mp4-x0_6")
    stalls = account.stalls_by_picture
    assert stalls and account.stall_time_by_picture_s and account.stall_time_by_picture_s > 1.0
    assert all(s.duration_s >= account.picture_stall_threshold_s for s in stalls)


def test_dashjs_top_rendition_at_0_6x_freezes_the_picture(lab):
    account = _play(lab, "dashjs", "dash-ffmpeg-x0_6", window_s=14.0, rendition="highest")
    assert account.time_to_start_s is not None, account.unmeasured
    assert {r["height"] for r in account.renditions if r["source"] == "dashjs"} == {480}
    assert account.stalls_by_picture, account.frames[-5:]
    assert account.rendition_switches == 0
