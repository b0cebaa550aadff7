"""Every media parser fuzzed: random bytes, mutated real and lab files, random chunkings; only handled errors."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytomo.errors import MediaError
from pytomo.lab.media import MediaSpec, ensure_media
from pytomo.media.budget import IndexLimitError
from pytomo.media.flv import metadata_duration_s
from pytomo.media.index import _MALFORMED, MediaIndexer
from pytomo.media.sidx import find_sidx, parse_sidx
from pytomo.media.timeline import TrackSamples, build_timeline
from tests.unit.media_fixtures import media_cache  # noqa: F401

REAL_MEDIA = Path("/work/shared/realmedia/progressive")
HEAD_BYTES = 160 * 1024  # of each real file, enough for its header and first frames
EXAMPLE_LIMIT_S = 2.0  # one example may not take longer (the deadline is per example too)
HANDLED = (*_MALFORMED, IndexLimitError)
EXAMPLES = int(os.environ.get("PYTOMO_FUZZ_EXAMPLES", "500"))  # more for a deep run; the default stays under 60 s
FUZZ = settings(max_examples=EXAMPLES, deadline=int(EXAMPLE_LIMIT_S * 1000),
                derandomize=os.environ.get("PYTOMO_FUZZ_EXAMPLES") is None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MAGICS = {  # a start each sniffer recognises, so random bytes reach that container's parser
    "mp4": struct.pack(">I4s", 24, b"ftyp") + b"isom\0\0\2\0isom",
    "webm": b"\x1a\x45\xdf\xa3",
    "flv": b"FLV\x01\x05\0\0\0\x09\0\0\0\0",
    "ts": b"\x47\x40\x00\x10\x00",
}


def _real_files() -> dict[str, bytes]:
    if not REAL_MEDIA.is_dir():
        return {}
    out = {}
    for path in sorted(REAL_MEDIA.iterdir()):
        with path.open("rb") as f:
            out[path.name] = f.read(HEAD_BYTES)
    return out


REAL = _real_files()


@pytest.fixture(scope="module")
def lab_files(media_cache: Path) -> dict[str, bytes]:  # noqa: F811
    """Small lab videos (2 s, 160x96) in every container."""
    specs = [MediaSpec(c, duration_s=2.0, bitrate_bps=200_000, width=160, height=96) for c in
             ("mp4", "mp4-moov-end", "fmp4", "webm", "flv")]
    return {spec.container: ensure_media(spec).path.read_bytes() for spec in specs}


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes, cycled."""
    out, pos, k = [], 0, 0
    while pos < len(data):
        step = sizes[k % len(sizes)] if sizes else len(data)
        out.append(data[pos:pos + step])
        pos += step
        k += 1
    return out


def exercise(data: bytes, sizes: list[int], box_limit_bytes: int = 1 << 20, file_size: bool = False,
             whole: bool = True) -> MediaIndexer:
    """Feed ``data`` in pieces and ask the indexer everything the pipeline and analysis ask; anything but a
    handled problem escapes (the indexer catches the handled ones itself)."""
    start = time.perf_counter()
    indexer = MediaIndexer(box_limit_bytes=box_limit_bytes, file_size_bytes=len(data) if file_size else None)
    for piece in chunked(data, sizes):
        indexer.feed(piece)
    need = indexer.tail_request()
    if need is not None and need[0] < len(data):
        indexer.feed_tail(need[0], data[need[0]:])
    if whole:
        indexer.end_of_file()
    timeline = indexer.timeline()
    indexer.unplayable(whole)
    indexer.moov_box()
    _ = indexer.problem, indexer.problem_kind
    if timeline is not None:
        assert all(a < b for a, b in zip(timeline.offsets_bytes, timeline.offsets_bytes[1:]))
        assert all(a <= b for a, b in zip(timeline.times_s, timeline.times_s[1:]))
        timeline.time_at(len(data))
        timeline.bytes_for(timeline.end_s)
    assert time.perf_counter() - start < EXAMPLE_LIMIT_S
    return indexer


sizes_st = st.lists(st.integers(1, 4096), min_size=1, max_size=8)
limit_st = st.sampled_from([64, 256, 4096, 1 << 20])  # box budgets; a 64th of it is the sample budget


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]], cut: int | None) -> bytes:
    """Apply (kind, position, bytes) edits: 0 overwrite, 1 insert, 2 delete len(bytes) bytes; then cut."""
    out = bytearray(data)
    for kind, pos, chunk in edits:
        pos %= max(1, len(out))
        if kind == 0:
            out[pos:pos + len(chunk)] = chunk
        elif kind == 1:
            out[pos:pos] = chunk
        else:
            del out[pos:pos + len(chunk)]
    return bytes(out if cut is None else out[:cut])


# A few positions land in headers: sizes and counts are what a hostile file lies about.
edit_st = st.tuples(st.integers(0, 2), st.one_of(st.integers(0, 4096), st.integers(0, HEAD_BYTES)),
                    st.one_of(st.binary(min_size=1, max_size=8),
                              st.sampled_from([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\0\0\0\x01", b"\x01" + b"\xff" * 7,
                                               b"\x7f\xff\xff\xff", b"\x80\0\0\0"])))
edits_st = st.lists(edit_st, min_size=1, max_size=6)


# --- the streaming indexers ----------------------------------------------------------------------------------


@FUZZ
@given(container=st.sampled_from(sorted(MAGICS)), body=st.binary(max_size=3000), sizes=sizes_st,
       limit=limit_st, file_size=st.booleans(), whole=st.booleans())
def test_random_bytes_after_each_magic(container: str, body: bytes, sizes: list[int], limit: int, file_size: bool,
                                       whole: bool) -> None:
    exercise(MAGICS[container] + body, sizes, limit, file_size, whole)


@pytest.mark.skipif(not REAL, reason="the real-media corpus is not here")
@FUZZ
@given(name=st.sampled_from(sorted(REAL)), edits=edits_st, cut=st.one_of(st.none(), st.integers(0, HEAD_BYTES)),
       sizes=sizes_st, file_size=st.booleans(), limit=limit_st)
def test_mutated_real_files(name: str, edits: list[tuple[int, int, bytes]], cut: int | None, sizes: list[int],
                            file_size: bool, limit: int) -> None:
    exercise(_mutate(REAL[name], edits, cut), [s * 16 for s in sizes], limit, file_size, whole=cut is not None)


@FUZZ
@given(container=st.sampled_from(["mp4", "mp4-moov-end", "fmp4", "webm", "flv"]), edits=edits_st,
       cut=st.one_of(st.none(), st.integers(0, 200_000)), sizes=sizes_st, file_size=st.booleans(), limit=limit_st)
def test_mutated_lab_files(lab_files: dict[str, bytes], container: str, edits: list[tuple[int, int, bytes]],
                           cut: int | None, sizes: list[int], file_size: bool, limit: int) -> None:
    exercise(_mutate(lab_files[container], edits, cut), [s * 16 for s in sizes], limit, file_size)


def _ts_packet(pid: int, start: bool, payload: bytes, adaptation: bytes | None = None) -> bytes:
    control = 0x10 | (0x20 if adaptation is not None else 0)
    head = bytes([0x47, (0x40 if start else 0) | (pid >> 8), pid & 0xFF, control])
    if adaptation is not None:
        head += bytes([len(adaptation)]) + adaptation
    return (head + payload + b"\xff" * 188)[:188]


def _pes(stream_id: int, length: int, flags: int, header: bytes, rest: bytes) -> bytes:
    """A PES header (PTS and DTS as given in ``header``) and the start of its payload."""
    head = b"\0\0\1" + bytes([stream_id]) + struct.pack(">H", length) + bytes([0x80, flags, len(header)])
    return head + header + rest


pes_st = st.builds(_pes, st.sampled_from([0xE0, 0xC0]), st.integers(0, 0xFFFF), st.sampled_from([0x80, 0xC0, 0x00]),
                   st.binary(min_size=0, max_size=12), st.one_of(st.binary(max_size=40),
                                                                  st.just(bytes.fromhex("fff15080") + b"\0" * 60)))
ts_packet_st = st.builds(_ts_packet, pid=st.sampled_from([0, 0x100, 0x101, 0x102, 0x1FFF]), start=st.booleans(),
                         payload=st.one_of(st.binary(max_size=184), pes_st),
                         adaptation=st.one_of(st.none(), st.binary(max_size=190)))
# The tables that make the PIDs above media streams: a PAT (program 1 on PID 0x100) and a PMT (H.264 on 0x101,
# AAC in ADTS on 0x102).
_PAT = _ts_packet(0, True, bytes.fromhex("0000b00d0001c100000001e100") + b"\0\0\0\0")
_PMT = _ts_packet(0x100, True, bytes.fromhex("0002b0170001c10000e101f0001be101f0000fe102f000") + b"\0\0\0\0")
_NULL = _ts_packet(0x1FFF, False, b"")


@FUZZ
@given(packets=st.lists(ts_packet_st, max_size=40), sizes=sizes_st, whole=st.booleans(), limit=limit_st)
def test_random_mpegts_packets(packets: list[bytes], sizes: list[int], whole: bool, limit: int) -> None:
    indexer = exercise(_PAT + _PMT + _NULL + b"".join(packets), sizes, limit, whole=whole)
    assert indexer.container == "ts"


# --- sidx, FLV metadata and the timeline ---------------------------------------------------------------------


def _sidx(version: int, refs: int) -> bytes:
    times = struct.pack(">II", 0, 0) if version == 0 else struct.pack(">QQ", 0, 0)
    body = bytes([version, 0, 0, 0]) + struct.pack(">II", 1, 1000) + times + struct.pack(">HH", 0, refs)
    body += b"".join(struct.pack(">III", 1000, 1000, 0x90000000) for _ in range(refs))
    return struct.pack(">I4s", 8 + len(body), b"sidx") + body


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), st.builds(_mutate, st.sampled_from([_sidx(0, 3), _sidx(1, 2)]),
                                                          edits_st, st.none())))
def test_sidx_raises_only_media_errors(data: bytes) -> None:
    for parse in (parse_sidx, lambda d: find_sidx(d)[1]):
        try:
            sidx = parse(data)
        except MediaError:
            continue
        sidx.ranges(0), sidx.durations_s(), sidx.starts_s()


@FUZZ
@given(body=st.binary(max_size=600))
def test_flv_metadata_raises_only_handled_errors(body: bytes) -> None:
    for data in (body, b"\x02\x00\x0aonMetaData" + body):
        try:
            metadata_duration_s(data)
        except HANDLED:
            pass


number_st = st.one_of(st.integers(-(1 << 40), 1 << 40), st.floats(allow_nan=False, allow_infinity=False, width=32))
sample_st = st.tuples(st.integers(0, 1 << 40), number_st, st.one_of(st.none(), number_st), st.one_of(st.none(),
                                                                                                      number_st))


@FUZZ
@given(tracks=st.lists(st.tuples(st.sampled_from(["audio", "video"]), st.sampled_from([1, 1000, 90_000, 1e-9]),
                                 st.lists(sample_st, max_size=30)), max_size=3),
       last_end_s=st.one_of(st.none(), st.floats(0, 1e6)), origin_s=st.one_of(st.none(), st.floats(-1e6, 1e6)))
def test_timeline_building_never_raises(tracks: list, last_end_s: float | None, origin_s: float | None) -> None:
    built = []
    for kind, timescale, samples in tracks:
        track = TrackSamples(kind, timescale)
        for end, pts, duration, dts in samples:
            track.add(end, pts, duration, dts)
        built.append(track)
    timeline = build_timeline("mp4-sample-table", built, None, last_end_s, origin_s)
    assert all(a < b for a, b in zip(timeline.offsets_bytes, timeline.offsets_bytes[1:]))


# --- regressions: what the fuzzing and the hostile review found ----------------------------------------------


def test_a_zigzag_sample_to_chunk_table_is_linear() -> None:
    """stsc entries going back to chunk 1 and on to the last, 4,000 times over 20,000 chunks: each chunk is visited
    once (it was 40 million steps, 7.5 s for a 128 kB moov; hours for a 64 MiB one)."""
    from tests.hostile_media import mp4_stsc_zigzag

    start = time.perf_counter()
    indexer = exercise(mp4_stsc_zigzag(), [1 << 20])
    assert time.perf_counter() - start < 0.5
    assert indexer.unplayable(True) == "no sample: the audio and video tracks list no sample"


def test_closing_the_last_pes_past_the_sample_budget_is_a_problem() -> None:
    """At the end of the file the open PES are closed: one past the sample budget stops the index (it escaped)."""
    pes = b"".join(_ts_packet(0x101, True, _pes(0xE0, 0, 0x80, bytes([0x21, 0, 1 + 2 * i, 0, 1]), b"x"))
                   for i in range(5))
    indexer = exercise(_PAT + _PMT + _NULL + pes, [4096], 256, whole=True)
    assert indexer.problem_kind == "too_many_samples"
    assert indexer.timeline() is None
