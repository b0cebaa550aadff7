"""The media indexers on hostile bytes: bounded in memory and time, and a file with nothing to play is no ok row."""

from __future__ import annotations

import resource
import time
import tracemalloc
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

import pytomo.engine.analysis as analysis_module
from pytomo.engine.analysis import NO_PLAYABLE_MEDIA, analyse
from pytomo.errors import MediaError
from pytomo.media.budget import BOX_LIMIT_BYTES
from pytomo.media.index import MediaIndexer
from pytomo.results import DownloadAnalysis, PlayoutParams, Transfer
from pytomo.settings import Settings
from tests import hostile_media as hostile

MIB = 1 << 20
STREAM_BYTES = 300 * MIB
TIME_LIMIT_S = 30.0
GROWTH_LIMIT_BYTES = 16 * MIB  # far below the 64 MiB budget: nothing of the stream is held


def _rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def feed_all(indexer: MediaIndexer, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        indexer.feed(chunk)


def bounded_feed(chunks: Iterable[bytes], **indexer_args: int) -> tuple[MediaIndexer, int, int, float]:
    """Feed ``chunks`` to a new indexer: (indexer, traced peak bytes, RSS peak growth bytes, seconds)."""
    rss_before = _rss_peak_bytes()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        indexer = MediaIndexer(**indexer_args)
        feed_all(indexer, chunks)
        indexer.timeline()
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return indexer, traced_peak, _rss_peak_bytes() - rss_before, time.perf_counter() - start


def test_the_default_budget_is_the_setting() -> None:
    assert BOX_LIMIT_BYTES == Settings().media_box_limit_bytes == 64 * MIB
    assert MediaIndexer().box_limit_bytes == BOX_LIMIT_BYTES


# --- bounded on hostile streams ------------------------------------------------------------------------------


@pytest.mark.parametrize(("head", "kind", "what"), [
    (hostile.webm_huge_timecode(), "impossible_size", "the Timecode element declares 36028797018963968 bytes"),
    (hostile.webm_huge_tracks(), "box_too_large", "the Tracks element declares 36028797018963968 bytes"),
    (hostile.mp4_huge_moov(), "box_too_large",
     "the moov box declares 267911168 bytes, more than the 67108864-byte budget"),
], ids=["webm-timecode-2^55", "webm-tracks-2^55", "mp4-moov-255MiB"])
def test_a_huge_declared_element_stops_the_index_unbuffered(head: bytes, kind: str, what: str) -> None:
    """300 MB streamed in 1 MiB chunks after the header: nothing is held, the problem says why."""
    indexer, traced, rss_growth, elapsed = bounded_feed(hostile.stream(head, STREAM_BYTES))
    assert indexer.received_bytes == STREAM_BYTES
    assert indexer.problem_kind == kind
    assert indexer.problem == f"media/{kind}: {what}" or indexer.problem.startswith(f"media/{kind}: {what}")
    assert indexer.timeline() is None
    assert traced < GROWTH_LIMIT_BYTES, traced
    assert rss_growth < GROWTH_LIMIT_BYTES, rss_growth
    assert elapsed < TIME_LIMIT_S


def test_the_moov_past_the_content_length_is_impossible() -> None:
    indexer = MediaIndexer(file_size_bytes=10 * MIB)
    feed_all(indexer, hostile.stream(hostile.mp4_huge_moov(20 * MIB), 10 * MIB))
    assert indexer.problem_kind == "impossible_size"
    assert indexer.problem == ("media/impossible_size: the moov box declares 20971520 bytes at byte 32, past the end "
                               "of the 10485760-byte file")


def test_a_moov_over_a_smaller_budget_is_too_large() -> None:
    indexer = MediaIndexer(box_limit_bytes=4096)
    feed_all(indexer, hostile.stream(hostile.mp4_huge_moov(5000), 100_000))
    assert indexer.problem_kind == "box_too_large"
    assert "more than the 4096-byte budget" in indexer.problem


def test_an_unneeded_huge_element_is_skipped_not_held() -> None:
    """A Void element of 2^55 bytes before the first Cluster: skipped by counting, the index still runs."""
    head = hostile.webm_head(with_cluster=False) + hostile._ebml(0xEC, size=hostile.HUGE_EBML_SIZE)
    indexer, traced, rss_growth, elapsed = bounded_feed(hostile.stream(head, STREAM_BYTES))
    assert indexer.problem is None
    assert traced < GROWTH_LIMIT_BYTES and rss_growth < GROWTH_LIMIT_BYTES
    assert elapsed < TIME_LIMIT_S


def test_a_declared_255_mib_moov_is_bounded_even_when_it_holds_data() -> None:
    """A moov that says 255.5 MiB followed by as much data: stopped at the header, never buffered."""
    chunks = hostile.stream(hostile.mp4_huge_moov(), hostile.HUGE_MOOV_DECLARED_BYTES + 4096, fill=0x61)
    indexer, traced, rss_growth, _ = bounded_feed(chunks)
    assert indexer.problem_kind == "box_too_large"
    assert traced < GROWTH_LIMIT_BYTES and rss_growth < GROWTH_LIMIT_BYTES


def test_samples_from_nothing_are_bounded() -> None:
    """Fragments of 60 bytes each listing 200,000 samples (trex defaults): the sample budget stops them."""
    chunks = hostile.stream_of(hostile.mp4_fragmented_head(), hostile.mp4_trun_bomb_fragment(200_000), 50 * MIB)
    start = time.perf_counter()
    indexer = MediaIndexer()
    feed_all(indexer, chunks)
    assert indexer.problem_kind == "too_many_samples"
    assert indexer.problem.startswith("media/too_many_samples: the index lists more than 1048576 samples")
    assert time.perf_counter() - start < TIME_LIMIT_S


def test_one_trun_of_ten_million_samples_is_refused_at_once() -> None:
    indexer = MediaIndexer()
    indexer.feed(hostile.mp4_fragmented_head() + hostile.mp4_trun_bomb_fragment(10_000_000))
    assert indexer.problem_kind == "too_many_samples"


def test_ebml_unknown_size_only_for_segment_and_cluster() -> None:
    """All size bits set is "unknown size" for a Segment or a Cluster; on a Timecode it is malformed."""
    indexer = MediaIndexer()
    indexer.feed(hostile.webm_head() + b"\xe7\x01" + b"\xff" * 7 + b"\0" * 64)
    assert indexer.problem_kind == "malformed"
    assert "unknown-size element 0xe7" in indexer.problem


def test_a_tail_past_the_content_length_is_not_requested() -> None:
    ftyp = hostile.mp4_huge_moov(0)[:-8]
    mdat = (10 * MIB).to_bytes(4, "big") + b"mdat"
    indexer = MediaIndexer(file_size_bytes=5 * MIB)
    indexer.feed(ftyp + mdat + b"\0" * 1000)
    assert indexer.tail_request() is None
    assert indexer.problem == "moov box not received"


# --- nothing playable is an error outcome ----------------------------------------------------------------------


def _transfer(data: bytes, whole: bool = True) -> Transfer:
    return Transfer(url="http://127.0.0.1/media", address="127.0.0.1", started_at=datetime.now(UTC), window_s=5.0,
                    bin_s=0.1, status=200, content_length_bytes=len(data), headers_s=0.0, first_byte_s=0.01,
                    last_byte_s=1.0, bytes_total=len(data), ended_by="eof" if whole else "window", head=data,
                    event_t_s=array("d", [0.01, 1.0]), event_bytes=array("q", [min(len(data), 10), len(data)]))


def analysed(data: bytes, whole: bool = True, media_info: bool = False, monkeypatch: pytest.MonkeyPatch | None = None,
             file_size_bytes: int | None = None) -> DownloadAnalysis:
    """The analysis of ``data`` fed to an indexer; MediaInfo says it is not media (or, with ``media_info``, that
    it is an H.264 file) so only the index speaks."""
    def fake_probe(*_args: object) -> object:
        if not media_info:
            raise MediaError("MediaInfo finds no audio or video track")
        return analysis_module.MediaInfoResult(container="mp4", video_codec="h264", audio_codec=None,
                                               duration_s=10.0, overall_bitrate_bps=1e6, video_bitrate_bps=None,
                                               audio_bitrate_bps=None, width=640, height=360, frame_rate=25.0)
    assert monkeypatch is not None
    monkeypatch.setattr(analysis_module, "probe", fake_probe)
    indexer = MediaIndexer(file_size_bytes=file_size_bytes)
    indexer.feed(data)
    return analyse(_transfer(data, whole), indexer, PlayoutParams())


@pytest.mark.parametrize(("data", "container", "reason"), [
    (hostile.mp4_no_track(), "mp4", "no track"),
    (hostile.mp4_no_sample(), "mp4", "no sample"),
    (hostile.flv_no_tag(), "flv", "no tag"),
    (hostile.webm_no_cluster(), "webm", "no block"),
], ids=["mp4-no-trak", "mp4-no-sample", "flv-no-tag", "webm-no-cluster"])
@pytest.mark.parametrize("media_info", [False, True], ids=["mediainfo-none", "mediainfo-h264"])
def test_nothing_playable_is_not_an_ok_row(data: bytes, container: str, reason: str, media_info: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    a = analysed(data, media_info=media_info, monkeypatch=monkeypatch, file_size_bytes=len(data))
    assert a.not_media
    assert a.media_problem_kind == NO_PLAYABLE_MEDIA
    assert a.media_problem.startswith(f"nothing playable in the {container} file: {reason}")
    assert a.playout is None


def test_a_moov_without_track_is_unplayable_before_the_end() -> None:
    """A plain moov lists every sample: no need to wait for the whole file."""
    indexer = MediaIndexer()
    indexer.feed(hostile.mp4_no_track()[:-500])
    assert indexer.unplayable(whole=False) == "no track: the moov lists no audio or video track"


@pytest.mark.parametrize("data", [hostile.flv_no_tag(), hostile.mp4_fragmented_head()], ids=["flv", "fmp4"])
def test_a_cut_file_with_no_sample_yet_may_still_play(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    a = analysed(data, whole=False, media_info=True, monkeypatch=monkeypatch)
    assert not a.not_media
    assert a.media_problem_kind is None


def test_a_budget_problem_without_mediainfo_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    data = hostile.mp4_huge_moov() + b"\0" * 4096
    a = analysed(data, whole=False, monkeypatch=monkeypatch)
    assert a.not_media
    assert a.media_problem_kind == "box_too_large"
    assert a.media_problem.startswith("media/box_too_large: the moov box declares 267911168 bytes")


def test_a_budget_problem_with_mediainfo_keeps_the_ok_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index stopped but MediaInfo read the header: media time from the average bitrate, the problem kept."""
    data = hostile.mp4_huge_moov() + b"\0" * 4096
    a = analysed(data, whole=False, media_info=True, monkeypatch=monkeypatch)
    assert not a.not_media
    assert a.media_time_source == "average-bitrate"
    assert "media/box_too_large" in a.media_problem


@pytest.mark.parametrize("known_size", [True, False], ids=["content-length", "no-length"])
def test_an_flv_tag_claiming_more_than_the_file_is_a_media_error(known_size: bool) -> None:
    """A tag that says 16 MiB in a 1 kB file: the index stops (at once with a Content-Length, at the end of the
    file without one) and the download is the media error it is, whatever the real MediaInfo makes of the header."""
    data = hostile.flv_huge_tag()
    indexer = MediaIndexer(file_size_bytes=len(data) if known_size else None)
    indexer.feed(data)
    a = analyse(_transfer(data), indexer, PlayoutParams())
    assert a.not_media and a.media_problem_kind == "impossible_size"
    assert a.media_problem is not None and "FLV tag" in a.media_problem and "16777215 bytes" in a.media_problem
    assert a.playout is None and a.playout_problem == "the file declares more bytes than it holds"


def test_an_flv_cut_inside_a_tag_by_the_window_may_still_play() -> None:
    """The same bytes cut by the window, with no Content-Length: the rest of the tag may still come."""
    indexer = MediaIndexer()
    indexer.feed(hostile.flv_huge_tag())
    assert indexer.problem_kind is None and indexer.unplayable(whole=False) is None
