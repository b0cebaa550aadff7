"""MediaInfo in its child process: hostile files end bounded, as the stored outcome, and the next file still works."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytomo.errors import MediaError, ParserFailure
from pytomo.lab.media import LabMedia, MediaSpec, ensure_media
from pytomo.media import sandbox
from pytomo.media.info import probe
from pytomo.media.sandbox import Limits, MediaInfoWorker
from tests.conftest import connect, database_of, run_crawler
from tests.hostile_media import (
    BLOATING_MP4_DECLARED_BYTES,
    flv_huge_strict_array,
    flv_nested_objects,
    mp4_huge_samples,
)
from tests.scripted_http import ScriptedServer, response
from tests.unit.media_fixtures import TEST_DURATION_S, lab_media, media_cache  # noqa: F401

TEST_MEMORY_BYTES = 100 << 20  # well below what the bloating MP4 takes (about 300 MB of address space)
TEST_LIMITS = Limits(memory_bytes=TEST_MEMORY_BYTES, time_s=3.0, cpu_s=3)
HOSTILE = {  # name: (bytes, declared size, expected kind)
    "nested.flv": (flv_nested_objects, None, "parser_crash"),
    "strict-array.flv": (flv_huge_strict_array, None, "parser_timeout"),
    "huge-samples.mp4": (mp4_huge_samples, BLOATING_MP4_DECLARED_BYTES, "parser_memory"),
}
_IN_PROCESS = textwrap.dedent("""
    import resource, sys
    from pymediainfo import MediaInfo
    MediaInfo.parse(sys.argv[1])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


@pytest.fixture(scope="module")
def mp4_media(media_cache: Path) -> LabMedia:  # noqa: F811
    """One normal lab MP4."""
    return ensure_media(MediaSpec("mp4", duration_s=TEST_DURATION_S))


@pytest.fixture
def small_worker(monkeypatch: pytest.MonkeyPatch):
    """The process's worker replaced by one with short limits, closed afterwards."""
    worker = MediaInfoWorker(TEST_LIMITS)
    monkeypatch.setattr(sandbox, "_WORKER", worker)
    yield worker
    worker.close()


def _hostile_file(tmp_path: Path, name: str) -> Path:
    make, size, _kind = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(make())
    if size is not None:
        with open(path, "r+b") as file:
            file.truncate(size)
    return path


@pytest.mark.parametrize("name", list(HOSTILE))
def test_the_files_really_break_mediainfo_in_process(name: str, tmp_path: Path) -> None:
    """In a throwaway interpreter (never this one): a crash, a hang, or more memory than the test limit."""
    path = _hostile_file(tmp_path, name)
    kind = HOSTILE[name][2]
    try:
        proc = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(path)], capture_output=True,
                              timeout=3 * TEST_LIMITS.time_s)
    except subprocess.TimeoutExpired:
        assert kind == "parser_timeout"
        return
    if kind == "parser_crash":
        assert proc.returncode < 0, proc.stderr  # killed by a signal (SIGSEGV: the AMF recursion)
    else:
        assert kind == "parser_memory" and proc.returncode == 0, proc.stderr
        assert int(proc.stdout) * 1024 > 2 * TEST_MEMORY_BYTES  # peak RSS: over 200 MB from a 678-byte head


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_ends_bounded_and_the_next_call_works(name: str, small_worker: MediaInfoWorker,
                                                           mp4_media: LabMedia) -> None:
    make, size, kind = HOSTILE[name]
    data = make()
    before_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with pytest.raises(ParserFailure) as caught:
        probe(data, size)
    assert time.monotonic() - t0 < 30
    # the nested AMF recursion grows past 300 MB before it crashes: under the test's 100 MiB limit the memory watch
    # may stop it first, and either outcome is the truth of that run
    kinds = {kind, "parser_memory"} if kind == "parser_crash" else {kind}
    assert caught.value.stage == "media" and caught.value.kind in kinds, str(caught.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss_kib < 50_000  # the crawler stays small
    whole = mp4_media.path.read_bytes()
    result = probe(whole, len(whole))  # a new child answers
    assert result.duration_s == pytest.approx(mp4_media.duration_s, rel=0.01)


def test_lab_file_reads_the_same_as_in_process(lab_media: LabMedia, small_worker: MediaInfoWorker,  # noqa: F811
                                               tmp_path: Path) -> None:
    from pymediainfo import MediaInfo

    whole = lab_media.path.read_bytes()
    sandboxed = probe(whole, len(whole))
    info = MediaInfo.parse(str(lab_media.path))  # a file of our own making: safe in this process
    general, video, audio = info.general_tracks[0], info.video_tracks[0], info.audio_tracks[0]
    assert sandboxed.duration_s == pytest.approx(float(general.duration) / 1000)
    assert sandboxed.overall_bitrate_bps == pytest.approx(float(general.overall_bit_rate))
    assert sandboxed.video_codec and sandboxed.video_codec in ("h264", "vp8") and video.format
    assert sandboxed.audio_codec and audio.format
    assert (sandboxed.width, sandboxed.height) == (int(video.width), int(video.height))


def test_a_file_mediainfo_refuses_is_not_a_crash(small_worker: MediaInfoWorker) -> None:
    with pytest.raises(MediaError) as caught:
        probe(b"not a media file at all" * 100, None)
    assert caught.value.kind == "not_media"
    assert small_worker._proc is not None and small_worker._proc.poll() is None  # the same child goes on


def test_crawl_stores_the_parser_outcome_and_goes_on(tmp_path: Path, mp4_media: LabMedia) -> None:
    """Through the crawler (default limits): each hostile file is its video's media/parser_* outcome."""
    files = {"nested.flv": flv_nested_objects(), "strict-array.flv": flv_huge_strict_array(),
             "clip.mp4": mp4_media.path.read_bytes()}

    def route(body: bytes, ctype: str):
        return lambda req: response("200 OK", {"Content-Type": ctype, "Content-Length": str(len(body))},
                                    b"" if req.method == "HEAD" else body)

    routes = {f"/{name}": route(body, "video/x-flv" if name.endswith(".flv") else "video/mp4")
              for name, body in files.items()}
    with ScriptedServer(routes) as server:
        urls = {name: f"{server.base}/{name}" for name in files}
        proc = run_crawler(["-s", "generic", "-b", "-D", "2", "-n", "1", "-S", "0", "--database-dir",
                            str(tmp_path), *urls.values()], timeout_s=180)
    assert "Traceback" not in proc.stderr, proc.stderr
    conn = connect(database_of(proc))
    rows = {}
    for name, url in urls.items():
        video = conn.execute("SELECT * FROM videos WHERE page_url = ?", (url,)).fetchone()
        download = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (video["id"],)).fetchone()
        rows[name] = (video, download)
    for name, kind in (("nested.flv", "parser_crash"), ("strict-array.flv", "parser_timeout")):
        video, download = rows[name]
        assert (video["status"], video["error_stage"], video["error_kind"]) == ("error", "media", kind), name
        assert download is not None and download["bytes"] == len(files[name])  # the download figures are kept
    video, download = rows["clip.mp4"]
    assert video["status"] == "ok", video["error_message"]
    assert download["media_duration_s"] == pytest.approx(mp4_media.duration_s, rel=0.01)
