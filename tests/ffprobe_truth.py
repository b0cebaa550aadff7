"""Ground truth from ffprobe's packet table: playable media time at every byte offset of a progressive file.

Definition (what a player holding the first X bytes of the file can present without a gap):

* Only audio and video streams count (data, subtitle and attached-picture streams are ignored).
* A packet is *complete* at X when ``pos + size <= X``. In file order the complete packets of a stream are a
  prefix of its packets.
* Per stream, with its complete packets C and its missing packets M, the playable presentation interval is
  ``[start, min(max(pts + duration over C), min(pts over M)))``: the end of the latest frame received, capped by the
  earliest presentation start still missing. The cap is what matters with B-frames: frames are stored in decode
  order, so a received P-frame presented at 0.3 s does not make [0.1, 0.3) playable while the B-frames shown at
  0.1 s and 0.2 s have not arrived. A stream with no complete packet contributes 0.
* Times are relative to the file's common start: the lowest first presentation time over the streams, counting only
  packets ffmpeg does not flag as discarded (``D``: samples an edit list cuts away, such as AAC priming), as a player
  starts there. ffmpeg applies MP4 edit lists itself, so pts are presentation times in the movie's time base.
* Playable media at X is the least over the streams. Times before the common start count as 0.
* How long a packet is presented: a video frame is shown until the next frame of its stream in presentation order
  (with dropped frames that is longer than the nominal frame duration), so its duration is that gap. The last
  frame, and audio packets, keep ffprobe's ``duration_time`` unless it is missing or shorter than half the gap to
  the next presentation time (the last packet: the previous gap), when the gap is used: ffmpeg invents one-tick
  durations for video whose container states none (it guesses 1000 fps for Matroska without DefaultDuration).
* FLV: ffprobe's ``pos`` is where the tag starts and ``size`` the frame data without its codec header, so
  ``pos + size`` lies before the end of the tag (16 bytes for AVC). A tag is followed by its 4-byte PreviousTagSize,
  then the next tag: a packet ends 4 bytes before the next packet's ``pos`` (the end of the file for the last one).
* Matroska lacing: the frames of one laced block all have the block's ``pos``, each with its own ``size``; they
  arrive together, so each ends at ``pos`` plus the sizes of all of them.
* MPEG-TS: a PES is spread over 188-byte packets interleaved with other streams, and ffmpeg's parsers split a PES
  of several AAC frames into packets without ``pos``; so ``pos + size`` says nothing of where a packet ends. There,
  a packet is complete at X when ffprobe run on the first X bytes alone lists it with its full size (matched by its
  rank in its stream, as ffprobe on a short input may not know the pts yet): ffmpeg flushes a cut PES at the end
  of its input, its last frame with fewer bytes. (It flags every frame of that PES corrupt, even the whole ones; a
  frame listed with its full size has all its bytes, so it counts.)

Durations: ``packet_duration_s`` is the latest presentation end over the packets minus the common start;
``format_duration_s`` is ffprobe's format duration (what a header declares, or computed by ffmpeg); the encoding
rate truth is the size in bits over one of them (see tests/unit/test_media_ffprobe.py for why either).
"""

from __future__ import annotations

import json
import math
import subprocess
from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path

from pytomo.lab.tools import ffprobe_exe

MEDIA_KINDS = ("audio", "video")


@dataclass(frozen=True)
class Packet:
    """One packet of an audio or video stream, in file order."""

    stream: int
    pos: int
    size: int
    pts_s: float
    duration_s: float
    discard: bool
    rank: int = 0  # its place among the packets of its stream, in ffprobe's (demuxing) order
    end: int = 0  # where its bytes end in the file (pos + size, but for FLV)


@dataclass(frozen=True)
class ProbeTruth:
    """ffprobe's account of a file: its audio/video packets, common start, format duration and size."""

    path: Path
    packets: tuple[Packet, ...]
    start_s: float
    format_duration_s: float | None
    size_bytes: int
    streams: dict[int, str]  # index -> codec_type of the streams that count
    codecs: dict[int, str]  # index -> codec_name
    format_name: str = ""

    @property
    def packet_duration_s(self) -> float:
        """Latest presentation end over the packets, from the common start."""
        return max(p.pts_s + p.duration_s for p in self.packets) - self.start_s

    @property
    def encoding_rate_bps(self) -> float | None:
        """Size in bits over the format duration."""
        if not self.format_duration_s:
            return None
        return self.size_bytes * 8 / self.format_duration_s

    def playable_curve(self) -> tuple[list[int], list[float]]:
        """(byte counts, playable seconds) at each packet completion, ascending in bytes; see the module docstring."""
        by_stream: dict[int, list[Packet]] = {}
        for p in self.packets:
            by_stream.setdefault(p.stream, []).append(p)
        events: list[tuple[int, int, float]] = []  # (bytes needed, stream, playable after it)
        for stream, packets in by_stream.items():
            packets.sort(key=lambda p: p.pos)
            suffix_min = [math.inf] * (len(packets) + 1)
            for i in range(len(packets) - 1, -1, -1):
                suffix_min[i] = min(suffix_min[i + 1], packets[i].pts_s)
            covered = -math.inf
            for i, p in enumerate(packets):
                covered = max(covered, p.pts_s + p.duration_s)
                events.append((p.end, stream, min(covered, suffix_min[i + 1]) - self.start_s))
        events.sort()
        current = {stream: 0.0 for stream in by_stream}
        offsets: list[int] = []
        times: list[float] = []
        for need, stream, t in events:
            current[stream] = max(0.0, t)
            value = min(current.values())
            if offsets and offsets[-1] == need:
                times[-1] = value
            else:
                offsets.append(need)
                times.append(value)
        return offsets, times

    @property
    def exact_ends(self) -> bool:
        """Whether ``pos + size`` tells where each packet ends (not for MPEG-TS)."""
        return "mpegts" not in self.format_name

    def _playable_of(self, complete: list[bool]) -> float:
        """Playable seconds when exactly the packets flagged in ``complete`` are held."""
        value = math.inf
        for stream in self.streams:
            ends = [p.pts_s + p.duration_s for p, c in zip(self.packets, complete) if p.stream == stream and c]
            missing = [p.pts_s for p, c in zip(self.packets, complete) if p.stream == stream and not c]
            t = min(max(ends), min(missing, default=math.inf)) - self.start_s if ends else 0.0
            value = min(value, max(0.0, t))
        return value

    def _prefix_playable(self, received_bytes: int) -> float:
        """Playable seconds judged by ffprobe on the first ``received_bytes`` bytes alone (MPEG-TS)."""
        head = self.path.read_bytes()[:received_bytes]
        done = subprocess.run(
            [ffprobe_path(), "-v", "quiet", "-of", "json", "-show_packets", "-show_entries",
             "packet=stream_index,pts_time,dts_time,size,flags", "-i", "pipe:0"],
            input=head, capture_output=True, check=False, timeout=120)
        seen: dict[tuple[int, int], int] = {}
        ranks: dict[int, int] = {}
        for p in json.loads(done.stdout or b"{}").get("packets", []):
            stream = p["stream_index"]
            ranks[stream] = ranks.get(stream, -1) + 1
            seen[(stream, ranks[stream])] = int(p["size"])
        complete = [seen.get((p.stream, p.rank)) == p.size for p in self.packets]
        return self._playable_of(complete)

    def playable_at(self, received_bytes: int, curve: tuple[list[int], list[float]] | None = None) -> float:
        """Playable seconds once the first ``received_bytes`` bytes of the file are held."""
        if not self.exact_ends:
            return self._prefix_playable(received_bytes)
        offsets, times = curve or self.playable_curve()
        i = bisect_right(offsets, received_bytes)
        return times[i - 1] if i else 0.0


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def ffprobe_path() -> str:
    """The ffprobe binary; fails the test with the reason when there is none."""
    path, why = ffprobe_exe()
    if path is None:
        raise RuntimeError(f"ffprobe is required for the media truth: {why}")
    return path


def _laced(packets: list[Packet]) -> list[Packet]:
    """Frames of one Matroska block (lacing: ffmpeg gives each the block's ``pos``) end where the block ends."""
    lace_end: dict[tuple[int, int], int] = {}
    for p in packets:
        key = (p.stream, p.pos)
        lace_end[key] = lace_end.get(key, p.pos) + p.size if p.pos >= 0 else p.end
    return [p if lace_end[(p.stream, p.pos)] == p.pos + p.size else replace(p, end=lace_end[(p.stream, p.pos)])
            for p in packets]


def probe_truth(path: Path) -> ProbeTruth:
    """Run ffprobe on ``path`` (packets, streams, format) and build its truth."""
    done = subprocess.run(
        [ffprobe_path(), "-v", "error", "-of", "json", "-show_streams", "-show_format", "-show_packets",
         "-show_entries", "packet=stream_index,pts_time,dts_time,duration_time,pos,size,flags", str(path)],
        capture_output=True, text=True, check=True, timeout=120)
    data = json.loads(done.stdout)
    streams = {s["index"]: s["codec_type"] for s in data.get("streams", [])
               if s.get("codec_type") in MEDIA_KINDS and not s.get("disposition", {}).get("attached_pic")}
    codecs = {s["index"]: s.get("codec_name", "") for s in data.get("streams", []) if s["index"] in streams}
    fmt = data.get("format", {})
    exact = "mpegts" not in fmt.get("format_name", "")
    raw: dict[int, list[dict]] = {}
    for p in data.get("packets", []):
        if p["stream_index"] in streams and (not exact or _float(p.get("pos")) is not None):
            raw.setdefault(p["stream_index"], []).append(p)
    packets: list[Packet] = []
    for stream, items in raw.items():
        pts = [_float(p.get("pts_time")) for p in items]
        pts = [t if t is not None else _float(p.get("dts_time")) for t, p in zip(pts, items)]
        order = sorted(t for t in pts if t is not None)
        gaps: dict[float, float] = {}
        previous_gap = 0.0
        for a, b in zip(order, order[1:]):
            if b > a:
                previous_gap = b - a
            gaps.setdefault(a, previous_gap)
        for rank, (t, p) in enumerate(zip(pts, items)):
            if t is None:
                continue
            duration = _float(p.get("duration_time"))
            gap = gaps.get(t, previous_gap)
            last = t == order[-1]
            if not duration or duration < gap / 2 or (streams[stream] == "video" and not last):
                duration = gap
            pos = int(p["pos"]) if _float(p.get("pos")) is not None else -1
            packets.append(Packet(stream, pos, int(p["size"]), t, duration, "D" in p.get("flags", ""), rank))
    if not packets:
        raise ValueError(f"ffprobe lists no audio or video packet in {path}")
    firsts = [min((p.pts_s for p in packets if p.stream == s and not p.discard), default=math.inf) for s in raw]
    start_s = min(firsts)
    if not math.isfinite(start_s):
        start_s = min(p.pts_s for p in packets)
    packets.sort(key=lambda p: p.pos)
    size_bytes = path.stat().st_size
    flv = fmt.get("format_name", "") == "flv"
    packets = [replace(p, end=max(p.pos + p.size, nxt.pos - 4 if flv and nxt else size_bytes if flv else 0))
               for p, nxt in zip(packets, [*packets[1:], None])]
    packets = _laced(packets)
    return ProbeTruth(path, tuple(packets), start_s, _float(fmt.get("duration")), size_bytes,
                      {s: streams[s] for s in raw}, {s: codecs[s] for s in raw}, fmt.get("format_name", ""))
