"""MPEG-TS index: PAT, PMT and the PES headers (PTS, DTS) of each audio and video stream, read as bytes stream by."""

from __future__ import annotations

from collections.abc import Generator

from pytomo.media.budget import IndexBudget
from pytomo.media.timeline import MediaTimeline, TrackSamples, build_timeline

PACKET_BYTES = 188
SYNC = 0x47
_CLOCK_HZ = 90_000
_WRAP = 1 << 33
_VIDEO_TYPES = frozenset({0x01, 0x02, 0x10, 0x1B, 0x20, 0x24, 0x42, 0xD1, 0xEA})
_AUDIO_TYPES = frozenset({0x03, 0x04, 0x0F, 0x11, 0x1C, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x8A})
_AUDIO_DESCRIPTORS = frozenset({0x6A, 0x7A, 0x7B, 0x7C})  # AC-3, E-AC-3, DTS, AAC in a private PES
_AUDIO_REGISTRATIONS = frozenset({b"AC-3", b"EAC3", b"Opus", b"DTS1", b"DTS2", b"DTS3", b"BSSD"})
_VIDEO_REGISTRATIONS = frozenset({b"HEVC", b"VC-1", b"AV01"})
_ADTS = 0x0F
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
MAX_SECTION_BYTES = 4096

# A parser generator yields n > 0 to be sent the next n bytes, or -n to have n bytes skipped (it is then sent b"").
Parser = Generator[int, bytes, None]


def _timestamp(buf: bytes, pos: int) -> int:
    """A 33-bit PTS/DTS from the 5 bytes at ``buf[pos:]``."""
    b = buf[pos:pos + 5]
    if len(b) < 5:
        raise ValueError("PES timestamp cut short")
    return ((b[0] >> 1) & 0x07) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def _stream_kind(stream_type: int, descriptors: bytes) -> str | None:
    """"audio", "video" or None for a PMT entry."""
    if stream_type in _VIDEO_TYPES:
        return "video"
    if stream_type in _AUDIO_TYPES:
        return "audio"
    if stream_type == 0x06:  # private data: the descriptors tell
        pos = 0
        while pos + 2 <= len(descriptors):
            tag, length = descriptors[pos], descriptors[pos + 1]
            body = descriptors[pos + 2:pos + 2 + length]
            if tag in _AUDIO_DESCRIPTORS or (tag == 0x05 and body[:4] in _AUDIO_REGISTRATIONS):
                return "audio"
            if tag == 0x05 and body[:4] in _VIDEO_REGISTRATIONS:
                return "video"
            pos += 2 + length
    return None


class _Stream:
    """One elementary stream: its samples and the PES being received.

    An AAC stream in ADTS (several frames per PES, as muxers pack them) is listed frame by frame: each frame is
    playable once its own bytes are in, before the rest of its PES.
    """

    __slots__ = ("samples", "pending", "header", "last_end", "expected", "received", "first", "adts", "frame_left",
                 "frame_head", "next_pts", "frame_pts", "frame_duration")

    def __init__(self, kind: str, adts: bool = False) -> None:
        self.samples = TrackSamples(kind, _CLOCK_HZ)
        self.adts = adts
        self.frame_left = 0  # bytes of the current ADTS frame still to come
        self.frame_head = b""  # start of an ADTS header split across TS packets
        self.next_pts: float | None = None  # presentation time of the next ADTS frame (ticks)
        self.frame_pts: float | None = None  # presentation time of the frame being received
        self.frame_duration = 0.0
        self.pending: tuple[int, int] | None = None  # (pts, dts) of the PES being received
        self.header = b""  # start of a PES whose header is not complete yet
        self.last_end = 0  # end of the last TS packet carrying this stream's payload
        self.expected: int | None = None  # payload bytes of the pending PES, when its length is given
        self.received = 0
        self.first: int | None = None  # first timestamp seen, to unwrap the 33-bit clock

    def unwrap(self, value: int) -> int:
        if self.first is None:
            self.first = value
        elif value < self.first - _WRAP // 2:
            value += _WRAP
        return value


class TsIndex:
    """What the packets of a progressive MPEG-TS file say about its PES; ``run`` is fed the file's bytes in order.

    A PES is complete at the end of its last TS packet: at once when its PES_packet_length is given (audio,
    usually), else when the next PES of its stream starts (video). The container declares no duration.
    """

    def __init__(self, budget: IndexBudget | None = None) -> None:
        self._budget = budget or IndexBudget()
        self.duration_s: float | None = None  # MPEG-TS has no declared duration
        self._pmt_pids: set[int] = set()
        self._streams: dict[int, _Stream] = {}
        self._sections: dict[int, bytearray] = {}
        self._pmt_seen = False
        self._pos = 0

    @property
    def waiting_for(self) -> str | None:
        """Why there is no timeline yet."""
        return None if self._pmt_seen else "PAT/PMT not received"

    def run(self) -> Parser:
        """Walk the 188-byte packets: tables on PIDs 0 and the PMT's, PES headers on the media PIDs."""
        while True:
            packet = yield PACKET_BYTES
            if packet[0] != SYNC:
                raise ValueError(f"MPEG-TS sync byte lost at byte {self._pos}")
            self._packet(packet)
            self._pos += PACKET_BYTES

    def _packet(self, packet: bytes) -> None:
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        start = bool(packet[1] & 0x40)
        control = (packet[3] >> 4) & 0x03
        if not control & 0x01 or packet[1] & 0x80:  # no payload, or transport error
            return
        offset = 4
        if control & 0x02:
            offset += 1 + packet[4]
        if offset >= PACKET_BYTES:
            return
        payload = packet[offset:]
        end = self._pos + PACKET_BYTES
        if pid == 0 or pid in self._pmt_pids:
            self._section(pid, start, payload)
            return
        stream = self._streams.get(pid)
        if stream is None:
            return
        if start:
            self._close(stream)
            stream.header = bytes(payload)
            stream.received = 0
            stream.expected = None
        elif stream.header:
            stream.header += payload
        stream.received += len(payload)
        stream.last_end = end
        data = payload
        if stream.header:
            rest = self._open(stream)
            if rest is None:
                return
            data = rest
        if stream.adts:
            self._adts(stream, data, end)
            stream.pending = None
        elif stream.pending is not None and stream.expected is not None and stream.received >= stream.expected:
            self._close(stream)

    def _adts(self, stream: _Stream, data: bytes, end: int) -> None:
        """List the ADTS frames that end in ``data`` (elementary stream bytes of a TS packet ending at ``end``)."""
        pos = 0
        while pos < len(data):
            if not stream.frame_left:
                head = stream.frame_head + data[pos:pos + 7 - len(stream.frame_head)]
                pos += len(head) - len(stream.frame_head)
                if len(head) < 7:
                    stream.frame_head = head
                    return
                stream.frame_head = b""
                if head[0] != 0xFF or head[1] & 0xF6 != 0xF0 or (head[2] >> 2) & 0x0F >= len(_ADTS_RATES):
                    stream.adts = False  # not ADTS after all: whole PES are listed from the next one on
                    return
                length = (head[3] & 0x03) << 11 | head[4] << 3 | head[5] >> 5
                if length < 7:
                    raise ValueError(f"ADTS frame of {length} bytes")
                rate = _ADTS_RATES[(head[2] >> 2) & 0x0F]
                stream.frame_left = length - 7
                stream.frame_pts = stream.next_pts
                stream.frame_duration = ((head[6] & 0x03) + 1) * 1024 * _CLOCK_HZ / rate
                if stream.next_pts is not None:
                    stream.next_pts += stream.frame_duration
            take = min(stream.frame_left, len(data) - pos)
            pos += take
            stream.frame_left -= take
            if not stream.frame_left and stream.frame_pts is not None:
                self._budget.add_samples(1)
                stream.samples.add(end, stream.frame_pts, stream.frame_duration)

    @staticmethod
    def _open(stream: _Stream) -> bytes | None:
        """Read the PES header collected in ``stream.header``: the payload bytes after it; None while incomplete."""
        head = stream.header
        if len(head) < 9:
            return None
        if head[:3] != b"\x00\x00\x01":
            stream.header = b""
            return b""
        length = head[4] << 8 | head[5]
        flags, header_len = head[7] >> 6, head[8]
        if len(head) < 9 + header_len:
            return None
        stream.header = b""
        stream.expected = length + 6 if length else None
        if flags & 0x02:  # a PES without PTS continues the stream's timing
            pts = stream.unwrap(_timestamp(head, 9))
            dts = stream.unwrap(_timestamp(head, 14)) if flags == 0x03 else pts
            stream.pending = (pts, dts)
            if stream.adts and not stream.frame_left:
                stream.next_pts = pts
        return head[9 + header_len:]

    def _close(self, stream: _Stream) -> None:
        if stream.pending is not None:
            pts, dts = stream.pending
            self._budget.add_samples(1)
            stream.samples.add(stream.last_end, pts, None, dts)
            stream.pending = None

    def _section(self, pid: int, start: int, payload: bytes) -> None:
        if start:
            pointer = payload[0]
            self._sections[pid] = bytearray(payload[1 + pointer:])
        elif pid in self._sections:
            self._sections[pid] += payload
        else:
            return
        section = self._sections[pid]
        if len(section) < 3:
            return
        length = (section[1] & 0x0F) << 8 | section[2]
        if length > MAX_SECTION_BYTES:
            raise ValueError(f"table section of {length} bytes")
        if len(section) < 3 + length:
            return
        del self._sections[pid]
        body = bytes(section[:3 + length - 4])  # without the CRC
        if section[0] == 0x00 and pid == 0:
            self._pat(body)
        elif section[0] == 0x02 and pid in self._pmt_pids:
            self._pmt(body)

    def _pat(self, body: bytes) -> None:
        for pos in range(8, len(body) - 3, 4):
            program = body[pos] << 8 | body[pos + 1]
            if program:
                self._pmt_pids.add((body[pos + 2] & 0x1F) << 8 | body[pos + 3])

    def _pmt(self, body: bytes) -> None:
        info_len = (body[10] & 0x0F) << 8 | body[11]
        pos = 12 + info_len
        while pos + 5 <= len(body):
            stream_type = body[pos]
            pid = (body[pos + 1] & 0x1F) << 8 | body[pos + 2]
            es_len = (body[pos + 3] & 0x0F) << 8 | body[pos + 4]
            kind = _stream_kind(stream_type, body[pos + 5:pos + 5 + es_len])
            if kind is not None and pid not in self._streams:
                self._streams[pid] = _Stream(kind, stream_type == _ADTS)
            pos += 5 + es_len
        self._pmt_seen = True

    def end_of_file(self) -> None:
        """The file has been received whole: the PES still open are complete."""
        for stream in self._streams.values():
            self._close(stream)

    def unplayable(self, whole: bool) -> str | None:
        """Why the file holds nothing to play, once that is certain (``whole``: every byte was received)."""
        if not whole or not self._pmt_seen:
            return None
        if not self._streams:
            return "no stream: the PMT lists no audio or video stream"
        if not any(len(s.samples) for s in self._streams.values()):
            return "no PES: the audio and video streams carry no timed PES"
        return None

    def timeline(self) -> MediaTimeline | None:
        """The timeline once the PMT is known, else None."""
        if not self._pmt_seen:
            return None
        return build_timeline("mpegts-pes", (s.samples for s in self._streams.values()), None)
