"""FLV index: the header of every tag (and the onMetaData script tag), read as bytes stream by."""

from __future__ import annotations

import math
import struct
from collections.abc import Generator

from pytomo.media.budget import IndexBudget, IndexLimitError
from pytomo.media.timeline import REORDER_PRIOR, MediaTimeline, TrackSamples, build_timeline

AUDIO, VIDEO, SCRIPT = 8, 9, 18
MAX_SCRIPT_BYTES = 1024 * 1024  # a larger script tag is skipped unread
_MS = 1000  # FLV timestamps are milliseconds
_CONFIG_PACKETS = frozenset({0, 2, 4, 5})  # enhanced FLV: sequence start/end, metadata, MPEG-2 TS sequence start
_HAS_AUDIO, _HAS_VIDEO = 0x04, 0x01  # the header's flags: the file has audio, video tags
_REORDERING_CODECS = frozenset({7, 12})  # AVC, HEVC: may have B-frames (VP6, H.263, screen video may not)
_REORDERING_FOURCCS = frozenset({b"avc1", b"hvc1", b"vvc1"})  # the same in enhanced FLV

# A parser generator yields n > 0 to be sent the next n bytes, or -n to have n bytes skipped (it is then sent b"").
Parser = Generator[int, bytes, None]


def _amf_value(buf: bytes, pos: int, depth: int = 0) -> tuple[object, int]:
    """One AMF0 value at ``buf[pos:]``: (value, position after it). Objects become dicts of their scalars."""
    if depth > 16:
        raise ValueError("AMF0 nesting too deep")
    marker = buf[pos]
    pos += 1
    if marker == 0x00:  # number
        return struct.unpack_from(">d", buf, pos)[0], pos + 8
    if marker == 0x01:  # boolean
        return bool(buf[pos]), pos + 1
    if marker == 0x02:  # string
        length = struct.unpack_from(">H", buf, pos)[0]
        return buf[pos + 2:pos + 2 + length].decode("utf-8", "replace"), pos + 2 + length
    if marker == 0x0C:  # long string
        length = struct.unpack_from(">I", buf, pos)[0]
        return buf[pos + 4:pos + 4 + length].decode("utf-8", "replace"), pos + 4 + length
    if marker in (0x03, 0x08):  # object, ECMA array (after its count): name/value pairs up to the end marker
        return _amf_object(buf, pos + 4 if marker == 0x08 else pos, depth)
    if marker == 0x0A:  # strict array
        return _amf_array(buf, pos, depth)
    if marker == 0x0B:  # date
        return None, pos + 10
    if marker in (0x05, 0x06):  # null, undefined
        return None, pos
    raise ValueError(f"AMF0 marker {marker:#x} not supported")


def _amf_object(buf: bytes, pos: int, depth: int) -> tuple[dict[str, object], int]:
    """The name/value pairs of an AMF0 object from ``pos`` up to its end marker, and the position after it."""
    values: dict[str, object] = {}
    while pos + 3 <= len(buf) and buf[pos:pos + 3] != b"\x00\x00\x09":
        length = struct.unpack_from(">H", buf, pos)[0]
        name = buf[pos + 2:pos + 2 + length].decode("utf-8", "replace")
        values[name], pos = _amf_value(buf, pos + 2 + length, depth + 1)
    return values, pos + 3


def _amf_array(buf: bytes, pos: int, depth: int) -> tuple[list[object], int]:
    """The items of an AMF0 strict array (its count at ``pos``), and the position after it."""
    count = struct.unpack_from(">I", buf, pos)[0]
    pos += 4
    items = []
    for _ in range(count):
        item, pos = _amf_value(buf, pos, depth + 1)
        items.append(item)
    return items, pos


def metadata_duration_s(body: bytes) -> float | None:
    """The ``duration`` of an onMetaData script tag body, if it has one."""
    name, pos = _amf_value(body, 0)
    if name != "onMetaData" or pos >= len(body):
        return None
    values, _ = _amf_value(body, pos)
    duration = values.get("duration") if isinstance(values, dict) else None
    return float(duration) if isinstance(duration, (int, float)) and 0 < duration < math.inf else None


def _reorders(head: bytes) -> bool:
    """Whether the codec of a video tag starting with ``head`` may reorder frames (B-frames)."""
    if head[0] & 0x80:
        return bytes(head[1:5]) in _REORDERING_FOURCCS
    return head[0] & 0x0F in _REORDERING_CODECS


class FlvIndex:
    """What the tags of an FLV file say about its frames; ``run`` is fed the file's bytes in order."""

    def __init__(self, budget: IndexBudget | None = None) -> None:
        self._budget = budget or IndexBudget()
        self.duration_s: float | None = None
        self._audio = TrackSamples("audio", _MS)
        self._video = TrackSamples("video", _MS)
        self._header_seen = False
        self._declared: tuple[TrackSamples, ...] = ()  # the tracks the header's flags announce
        self.complete = False  # every tag of the file has been listed
        self._open_tag: tuple[int, int] | None = None  # (offset, declared size) of a tag whose body is not all read

    @property
    def waiting_for(self) -> str | None:
        """Why there is no timeline yet."""
        return None if self._header_seen else "FLV header not received"

    def run(self) -> Parser:
        """Walk the header and the tags; read the first bytes of each audio/video tag and the script tags."""
        header = yield 9
        if header[:3] != b"FLV":
            raise ValueError("no FLV signature")
        data_offset = struct.unpack_from(">I", header, 5)[0]
        if data_offset < 9:
            raise ValueError(f"FLV header size {data_offset}")
        self._declared = tuple(t for t, flag in ((self._audio, _HAS_AUDIO), (self._video, _HAS_VIDEO))
                               if header[4] & flag)
        if data_offset > 9:
            yield -(data_offset - 9)
        yield -4  # PreviousTagSize0
        self._header_seen = True
        pos = data_offset + 4
        while True:
            tag = yield 11
            kind = tag[0] & 0x1F
            size = int.from_bytes(tag[1:4], "big")
            timestamp = int.from_bytes(tag[4:7], "big") | (tag[7] << 24)
            end = pos + 11 + size
            self._budget.hold("FLV tag", size, pos + 11)  # its body must end within the file (Content-Length)
            self._open_tag = (pos, size)
            read = 0
            if kind == VIDEO and size:
                read = min(size, 8)
                self._video_tag((yield read), end, timestamp)
            elif kind == AUDIO and size:
                read = min(size, 2)
                head = yield read
                if not (head[0] >> 4 == 10 and len(head) > 1 and head[1] == 0):  # not the AAC config
                    self._budget.add_samples(1)
                    self._audio.add(end, timestamp)
            elif kind == SCRIPT and 0 < size <= MAX_SCRIPT_BYTES:
                read = size
                duration = metadata_duration_s((yield size))
                if duration is not None:
                    self.duration_s = duration
            if size > read:
                yield read - size
            self._open_tag = None
            yield -4  # PreviousTagSize
            pos = end + 4

    def _video_tag(self, head: bytes, end: int, timestamp: int) -> None:
        """List the frame of a video tag starting with ``head`` and ending at ``end``, if it carries one."""
        if not len(self._video) and _reorders(head):
            self._video.reorder_min = REORDER_PRIOR
        cts = self._video_cts(head)
        if cts is not None:
            self._budget.add_samples(1)
            self._video.add(end, timestamp + cts, None, timestamp)

    @staticmethod
    def _video_cts(head: bytes) -> int | None:
        """Composition offset (ms) of a video tag, or None if the tag carries no frame."""
        if head[0] & 0x80:  # enhanced FLV: packet type in the low bits, FourCC in bytes 1-4
            packet_type = head[0] & 0x0F
            if packet_type in _CONFIG_PACKETS:
                return None
            if packet_type == 1 and len(head) >= 8:
                return int.from_bytes(head[5:8], "big", signed=True)
            return 0
        frame_type, codec = head[0] >> 4, head[0] & 0x0F
        if frame_type == 5:  # video info/command frame
            return None
        if codec in (7, 12):  # AVC, HEVC: packet type, then composition time
            if len(head) < 5 or head[1] != 1:
                return None
            return int.from_bytes(head[2:5], "big", signed=True)
        return 0

    def unplayable(self, whole: bool) -> str | None:
        """Why the file holds nothing to play, once that is certain (``whole``: every byte was received)."""
        if whole and self._header_seen and not len(self._audio) and not len(self._video):
            return "no tag: the file holds no audio or video tag"
        return None

    def end_of_file(self) -> None:
        """Every byte of the file has been fed: the tags listed are all there are; a tag whose declared body runs
        past the end of the file makes the file impossible (its frame was never there to play)."""
        self.complete = True
        if self._open_tag is not None:
            offset, size = self._open_tag
            raise IndexLimitError(f"the FLV tag at byte {offset} declares {size} bytes, past the end of the file",
                                  "impossible_size")

    def timeline(self) -> MediaTimeline | None:
        """The timeline once the header is known, else None."""
        if not self._header_seen:
            return None
        tracks = [t for t in (self._audio, self._video) if len(t) or t in self._declared]
        # Until the file ends, tags not listed yet may be presented before listed ones (B-frames), and a track the
        # header declares may still show.
        return build_timeline("flv-tags", tracks, self.duration_s, open_ended=not self.complete)
