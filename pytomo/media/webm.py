"""WebM/Matroska index: Info, Tracks and the headers of the blocks in each Cluster, read as bytes stream by."""

from __future__ import annotations

import math
import struct
from collections.abc import Generator, Iterator

from pytomo.media.budget import IndexBudget, IndexLimitError
from pytomo.media.timeline import REORDER_PRIOR, MediaTimeline, TrackSamples, build_timeline

EBML = 0x1A45DFA3
SEGMENT = 0x18538067
INFO = 0x1549A966
TRACKS = 0x1654AE6B
CLUSTER = 0x1F43B675
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_TYPE = 0x83
DEFAULT_DURATION = 0x23E383
CODEC_ID = 0x86
TIMECODE_SCALE = 0x2AD7B1
DURATION = 0x4489
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
BLOCK_DURATION = 0x9B
# Elements that may sit directly in a Cluster (anything else ends a Cluster of unknown size).
CLUSTER_CHILDREN = frozenset({TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, 0xA7, 0xAB, 0xAF, 0x5854, 0xEC, 0xBF})
MAX_UINT_BYTES = 8  # an EBML unsigned integer (Timecode, BlockDuration) has at most 8 bytes
_TRACK_KINDS = {1: "video", 2: "audio"}
_REORDERING_CODECS = (b"V_MPEG", b"V_MS/VFW", b"V_REAL")  # MPEG-1/2/4, AVC, HEVC, VfW: may have B-frames
_TO_END = 1 << 62

# A parser generator yields n > 0 to be sent the next n bytes, or -n to have n bytes skipped (it is then sent b"").
Parser = Generator[int, bytes, None]
Header = tuple[int, "int | None", int]  # element ID, payload size (None: unknown), header length


def _vint_length(first: int, limit: int) -> int:
    length = 9 - first.bit_length() if first else 9
    if length > limit:
        raise ValueError(f"invalid EBML variable-size integer starting with byte {first:#04x}")
    return length


def _read_header() -> Generator[int, bytes, Header]:
    """Read one element header from the stream: its ID, payload size and length."""
    first = (yield 1)[0]
    id_length = _vint_length(first, 4)
    rest = yield id_length  # the rest of the ID and the first byte of the size
    element_id = int.from_bytes(bytes([first]) + rest[:-1], "big")
    size_first = rest[-1]
    size_length = _vint_length(size_first, 8)
    size_bytes = bytes([size_first]) + ((yield size_length - 1) if size_length > 1 else b"")
    size = int.from_bytes(size_bytes, "big") & ((1 << (7 * size_length)) - 1)
    if size == (1 << (7 * size_length)) - 1:
        return element_id, None, id_length + size_length
    return element_id, size, id_length + size_length


def _elements(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(ID, payload start, payload end) of each element in ``buf[start:end]``."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        id_length = _vint_length(buf[pos], 4)
        element_id = int.from_bytes(buf[pos:pos + id_length], "big")
        pos += id_length
        size_length = _vint_length(buf[pos], 8)
        size = int.from_bytes(buf[pos:pos + size_length], "big") & ((1 << (7 * size_length)) - 1)
        pos += size_length
        if pos + size > end:
            raise ValueError(f"element {element_id:#x} runs past its parent")
        yield element_id, pos, pos + size
        pos += size


def _read_uint(name: str, size: int) -> Generator[int, bytes, int]:
    """Read an unsigned integer element's payload of ``size`` bytes from the stream (at most 8 bytes)."""
    if size > MAX_UINT_BYTES:
        raise IndexLimitError(f"the {name} element declares {size} bytes; an unsigned integer has at most "
                              f"{MAX_UINT_BYTES}", "impossible_size")
    return int.from_bytes((yield size), "big") if size else 0


def _uint(buf: bytes, start: int, end: int) -> int:
    return int.from_bytes(buf[start:end], "big")


def _float(buf: bytes, start: int, end: int) -> float:
    if end - start == 4:
        return struct.unpack_from(">f", buf, start)[0]
    if end - start == 8:
        return struct.unpack_from(">d", buf, start)[0]
    raise ValueError(f"EBML float of {end - start} bytes")


class WebmIndex:
    """What the elements of a WebM/Matroska file say about its blocks; ``run`` is fed the file's bytes in order."""

    def __init__(self, budget: IndexBudget | None = None) -> None:
        self._budget = budget or IndexBudget()
        self.timecode_scale_ns = 1_000_000
        self.duration_ticks: float | None = None
        self.segment_complete = False  # every block of the Segment has been listed (or the file has ended)
        self._tracks: dict[int, TrackSamples] = {}
        self._default_duration_ns: dict[int, int] = {}
        self._tracks_seen = False

    @property
    def waiting_for(self) -> str | None:
        """Why there is no timeline yet."""
        return None if self._tracks_seen else "Tracks element not received"

    def run(self) -> Parser:
        """Walk the EBML header and the Segment; read Info and Tracks, and the headers of Cluster blocks."""
        element_id, size, header_len = yield from _read_header()
        if element_id != EBML or size is None:
            raise ValueError("no EBML header")
        yield -size
        pos = header_len + size
        while True:  # anything before the Segment (Void, CRC) is skipped
            element_id, size, header_len = yield from _read_header()
            if element_id == SEGMENT:
                break
            if size is None:
                raise ValueError(f"unknown-size element {element_id:#x} before the Segment")
            yield -size
            pos += header_len + size
        pos += header_len
        segment_end = None if size is None else pos + size
        pending: Header | None = None
        while segment_end is None or pos < segment_end:
            element_id, size, header_len = pending or (yield from _read_header())
            pending = None
            if element_id == CLUSTER:
                pos, pending = yield from self._cluster(pos + header_len, size)
                continue
            if size is None:
                raise ValueError(f"unknown-size element {element_id:#x} in the Segment")
            if element_id in (INFO, TRACKS):
                self._budget.hold("Info element" if element_id == INFO else "Tracks element", size, pos + header_len)
                body = yield size
                if element_id == INFO:
                    self._parse_info(body)
                else:
                    self._parse_tracks(body)
            elif size:
                yield -size
            pos += header_len + size
        self.segment_complete = True
        yield -_TO_END

    def _cluster(self, pos: int, size: int | None) -> Generator[int, bytes, tuple[int, Header | None]]:
        """List the blocks of one Cluster starting at payload offset ``pos``.

        Returns where the Cluster ends and, for a Cluster of unknown size, the header of the element that
        ended it (already read from the stream).
        """
        end = None if size is None else pos + size
        timecode = 0
        pending: Header | None = None
        while end is None or pos < end:
            element_id, child_size, header_len = pending or (yield from _read_header())
            pending = None
            if end is None and element_id not in CLUSTER_CHILDREN:
                return pos, (element_id, child_size, header_len)
            body_start = pos + header_len
            if child_size is None:  # only a Segment or a Cluster may have an unknown size
                raise ValueError(f"unknown-size element {element_id:#x} in a Cluster")
            if element_id == TIMECODE:
                timecode = yield from _read_uint("Timecode", child_size)
            elif element_id == SIMPLE_BLOCK:
                track, relative, frames = yield from self._block_header(child_size)
                self._add_block(track, body_start + child_size, timecode + relative, None, frames)
            elif element_id == BLOCK_GROUP:
                yield from self._block_group(body_start, child_size, timecode)
            elif child_size:
                yield -child_size
            pos = body_start + child_size
        return pos, None

    def _block_group(self, pos: int, size: int, timecode: int) -> Generator[int, bytes, None]:
        """List the Block of one BlockGroup starting at payload offset ``pos``, with its BlockDuration."""
        end = pos + size
        block: tuple[int, int, int, int] | None = None  # track, end offset, timecode, frames
        duration: int | None = None
        while pos < end:
            element_id, child_size, header_len = yield from _read_header()
            if child_size is None:
                raise ValueError(f"unknown-size element {element_id:#x} in a BlockGroup")
            if element_id == BLOCK:
                track, relative, frames = yield from self._block_header(child_size)
                block = (track, pos + header_len + child_size, timecode + relative, frames)
            elif element_id == BLOCK_DURATION:
                duration = yield from _read_uint("BlockDuration", child_size)
            elif child_size:
                yield -child_size
            pos += header_len + child_size
        if block is not None:
            track, block_end, block_time, frames = block
            self._add_block(track, block_end, block_time, duration, frames)

    @staticmethod
    def _block_header(size: int) -> Generator[int, bytes, tuple[int, int, int]]:
        """Read a (Simple)Block's header, skip its frames; return track number, relative timecode, frame count."""
        if size < 4:
            raise ValueError(f"block of {size} bytes")
        head_len = min(size, 16)
        head = yield head_len
        track_len = _vint_length(head[0], 8)
        if track_len + 3 > head_len:
            raise ValueError("block header does not fit in its block")
        track = int.from_bytes(head[:track_len], "big") & ((1 << (7 * track_len)) - 1)
        relative, flags = struct.unpack_from(">hB", head, track_len)
        frames = 1
        if flags & 0x06 and track_len + 3 < head_len:
            frames = head[track_len + 3] + 1
        if size > head_len:
            yield head_len - size
        return track, relative, frames

    def _add_block(self, track_number: int, end: int, ticks: int, duration: float | None, frames: int) -> None:
        track = self._tracks.get(track_number)
        if track is None:
            return
        self._budget.add_samples(1)
        if duration is None and track_number in self._default_duration_ns:
            duration = frames * self._default_duration_ns[track_number] / self.timecode_scale_ns
        track.add(end, ticks, duration)

    def _parse_info(self, buf: bytes) -> None:
        for element_id, start, end in _elements(buf):
            if element_id == TIMECODE_SCALE:
                self.timecode_scale_ns = _uint(buf, start, end) or 1_000_000
            elif element_id == DURATION:
                self.duration_ticks = _float(buf, start, end)
        for track in self._tracks.values():
            track.timescale = 1e9 / self.timecode_scale_ns

    def _parse_tracks(self, buf: bytes) -> None:
        for element_id, start, end in _elements(buf):
            if element_id != TRACK_ENTRY:
                continue
            self._parse_track_entry(buf, start, end)
        self._tracks_seen = True

    def _parse_track_entry(self, buf: bytes, start: int, end: int) -> None:
        number = kind = default_ns = None
        codec = b""
        for child, c_start, c_end in _elements(buf, start, end):
            if child == TRACK_NUMBER:
                number = _uint(buf, c_start, c_end)
            elif child == TRACK_TYPE:
                kind = _TRACK_KINDS.get(_uint(buf, c_start, c_end))
            elif child == DEFAULT_DURATION:
                default_ns = _uint(buf, c_start, c_end)
            elif child == CODEC_ID:
                codec = bytes(buf[c_start:c_end])
        if number is None or kind is None:
            return
        track = TrackSamples(kind, 1e9 / self.timecode_scale_ns)
        if kind == "video" and codec.startswith(_REORDERING_CODECS):
            track.reorder_min = REORDER_PRIOR
        self._tracks[number] = track
        if default_ns:
            self._default_duration_ns[number] = default_ns

    def end_of_file(self) -> None:
        """Every byte of the file has been fed: the blocks listed are all there are."""
        self.segment_complete = True

    def duration_s(self) -> float | None:
        """The Segment duration from Info, when given."""
        if self.duration_ticks is None or not 0 < self.duration_ticks < math.inf:
            return None
        return self.duration_ticks * self.timecode_scale_ns / 1e9

    def unplayable(self, whole: bool) -> str | None:
        """Why the file holds nothing to play, once that is certain (``whole``: every byte was received)."""
        if not self._tracks_seen:
            return None
        if not self._tracks:
            return "no track: the Tracks element lists no audio or video track"
        if (whole or self.segment_complete) and not any(len(t) for t in self._tracks.values()):
            return "no block: the Segment holds no block of its audio or video tracks"
        return None

    def timeline(self) -> MediaTimeline | None:
        """The timeline once the Tracks are known, else None."""
        if not self._tracks_seen:
            return None
        # The Segment's Duration is not where each track ends (tracks end apart, and it may count from 0 while the
        # first block is later), so a final block without a duration lasts as long as the gap before it.
        # Until the Segment ends, blocks not listed yet may be presented before listed ones (B-frames).
        return build_timeline("webm-blocks", self._tracks.values(), self.duration_s(),
                              open_ended=not self.segment_complete)
