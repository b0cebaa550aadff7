"""MP4 (ISO BMFF) index: sample tables of the moov and the track fragments of moof boxes, read as bytes stream by."""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Generator, Iterator
from itertools import accumulate, repeat

from pytomo.media.budget import IndexBudget
from pytomo.media.timeline import MediaTimeline, TrackSamples, build_timeline

TOP_LEVEL_TYPES = frozenset(b"ftyp styp moov moof mdat free skip wide pdin sidx uuid meta".split())
_TO_END = 1 << 62  # "skip everything that follows"
_HANDLERS = {b"vide": "video", b"soun": "audio"}
FRAME_RUN_S = 0.02  # fixed-size audio frames (PCM) are indexed in runs of at most this long, one entry a run

# A parser generator yields n > 0 to be sent the next n bytes, or -n to have n bytes skipped (it is then sent b"").
Parser = Generator[int, bytes, None]


def _u32(buf: bytes, pos: int) -> int:
    return struct.unpack_from(">I", buf, pos)[0]


def _u64(buf: bytes, pos: int) -> int:
    return struct.unpack_from(">Q", buf, pos)[0]


def _uints(buf: bytes, pos: int, count: int, typecode: str = "I") -> array:
    """``count`` big-endian unsigned integers (``I`` 32-bit, ``Q`` 64-bit, ``H`` 16-bit) from ``buf[pos:]``."""
    values = array(typecode)
    end = pos + count * values.itemsize
    if count < 0 or end > len(buf):
        raise ValueError("table runs past the end of its box")
    values.frombytes(buf[pos:end])
    if sys.byteorder == "little":
        values.byteswap()
    return values


def _expand(counts: array, values: list[int] | array, limit: int) -> list[int]:
    """Run-length pairs (count, value) expanded to at most ``limit`` values."""
    out: list[int] = []
    for n, value in zip(counts, values):
        out.extend(repeat(value, min(n, limit - len(out))))
        if len(out) >= limit:
            break
    return out


def _signed32(values: array) -> list[int]:
    return [v - (1 << 32) if v & 0x80000000 else v for v in values]


def _children(buf: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box inside ``buf[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            size = _u64(buf, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"box {kind!r} of {size} bytes does not fit in its parent")
        yield kind, pos + header, pos + size
        pos += size


def _box_header(size: int, kind: bytes, header_len: int) -> bytes:
    """The header bytes of a box of ``size`` bytes (a 64-bit size when it had one)."""
    if header_len == 16:
        return struct.pack(">I4sQ", 1, kind, size)
    return struct.pack(">I4s", size, kind)


def _child(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for child_kind, child_start, child_end in _children(buf, start, end):
        if child_kind == kind:
            return child_start, child_end
    return None


def _size_header(buf: bytes, boxes: dict[bytes, tuple[int, int]]) -> tuple[int, int]:
    """(size of every sample, or 0 when each has its own; sample count) from the stsz or stz2 box."""
    if b"stsz" in boxes:
        fixed, count = struct.unpack_from(">II", buf, boxes[b"stsz"][0] + 4)
        return fixed, count
    if b"stz2" in boxes:
        return 0, _u32(buf, boxes[b"stz2"][0] + 8)
    return 0, 0


def _variable_sizes(buf: bytes, boxes: dict[bytes, tuple[int, int]], count: int) -> list[int]:
    """The ``count`` sizes the stsz or stz2 box lists one by one."""
    if b"stsz" in boxes:
        return list(_uints(buf, boxes[b"stsz"][0] + 12, count))
    start = boxes[b"stz2"][0]
    field_bits = buf[start + 7]
    if field_bits == 16:
        return list(_uints(buf, start + 12, count, "H"))
    if field_bits == 8:
        return list(buf[start + 12:start + 12 + count])
    if field_bits == 4:
        nibbles = [n for b in buf[start + 12:start + 12 + (count + 1) // 2] for n in (b >> 4, b & 15)]
        return nibbles[:count]
    raise ValueError(f"stz2 field size {field_bits}")


def _chunks(buf: bytes, boxes: dict[bytes, tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """(file offset, sample count) of each chunk in file order, from stco or co64 and stsc."""
    if b"stco" in boxes:
        chunk_offsets = _uints(buf, boxes[b"stco"][0] + 8, _u32(buf, boxes[b"stco"][0] + 4))
    elif b"co64" in boxes:
        chunk_offsets = _uints(buf, boxes[b"co64"][0] + 8, _u32(buf, boxes[b"co64"][0] + 4), "Q")
    else:
        raise ValueError("sample table without chunk offsets")
    stsc = boxes.get(b"stsc")
    if stsc is None:
        raise ValueError("sample table without stsc")
    runs = _uints(buf, stsc[0] + 8, 3 * _u32(buf, stsc[0] + 4))
    return _chunk_walk(chunk_offsets, runs)


def _chunk_walk(chunk_offsets: array, runs: array) -> Iterator[tuple[int, int]]:
    """(offset, samples) of each chunk; runs of chunks never go back, so each chunk is visited once."""
    entries = len(runs) // 3
    next_chunk = 0
    for e in range(entries):
        first_chunk, per_chunk = runs[3 * e], runs[3 * e + 1]
        last_chunk = min(runs[3 * (e + 1)] - 1 if e + 1 < entries else len(chunk_offsets), len(chunk_offsets))
        first = max(first_chunk - 1, next_chunk)
        next_chunk = max(next_chunk, last_chunk)
        for chunk in range(first, last_chunk):
            yield chunk_offsets[chunk], per_chunk


def _sample_ends(chunks: Iterator[tuple[int, int]], sizes: list[int]) -> list[int]:
    """Where each sample ends in the file, in sample order."""
    ends: list[int] = []
    sample = 0
    for offset, per_chunk in chunks:
        if sample >= len(sizes):
            break
        run = accumulate(sizes[sample:sample + per_chunk], initial=offset)
        next(run)  # the chunk's start
        ends.extend(run)
        sample += per_chunk
    return ends


def _frames_per_entry(samples: TrackSamples, stts: array) -> int:
    """How many fixed-size samples one index entry stands for: audio frames (PCM) up to ``FRAME_RUN_S``, else 1."""
    longest = max(stts[1::2], default=0)
    if samples.kind != "audio" or not longest:
        return 1
    return max(1, int(samples.timescale * FRAME_RUN_S) // longest)


class _DecodeTimes:
    """The decode time of any sample number from the run-length stts table, without expanding it."""

    def __init__(self, stts: array) -> None:
        self._deltas = stts[1::2]
        self._firsts = list(accumulate(stts[::2], initial=0))  # first sample of each run
        self._times = list(accumulate((n * d for n, d in zip(stts[::2], self._deltas)), initial=0))

    def __call__(self, sample: int) -> int:
        run = min(bisect_right(self._firsts, sample) - 1, len(self._deltas) - 1)
        if run < 0:
            return 0
        return self._times[run] + (sample - self._firsts[run]) * self._deltas[run]


class _Track:
    """What the moov says about one track: its kind, timescale, edit shift and fragment defaults."""

    __slots__ = ("samples", "default_duration", "default_size", "next_dts", "shift")

    def __init__(self, samples: TrackSamples) -> None:
        self.samples = samples
        self.default_duration = 0
        self.default_size = 0
        self.next_dts = 0
        self.shift = 0  # ticks added to every composition time: the edit list's mapping to movie time


def _edit_shift(buf: bytes, elst: tuple[int, int], movie_timescale: int, timescale: int) -> int:
    """Ticks to add to a track's composition times so that they are movie times, from its edit list.

    Leading empty edits delay the track; the first media edit starts showing the media at its ``media_time``.
    Later edits (rare in progressive files: repeats, dwells) are not modelled.
    """
    start = elst[0]
    version, count = buf[start], _u32(buf, start + 4)
    pos = start + 8
    empty = 0
    for _ in range(count):
        if version == 1:
            duration, media_time = struct.unpack_from(">Qq", buf, pos)
            pos += 16
        else:
            duration, media_time = struct.unpack_from(">Ii", buf, pos)
            pos += 8
        pos += 4  # media rate
        if media_time == -1:
            empty += duration
            continue
        delay = round(empty * timescale / movie_timescale) if movie_timescale else 0
        return delay - media_time
    return 0


class Mp4Index:
    """What the boxes of an MP4 file say about its samples; ``run`` is fed the file's bytes in order.

    Composition offsets (ctts, trun) and the first edit of each edit list (leading empty edits, then the
    ``media_time`` the track starts showing at) are applied, so all tracks share the movie's time base; samples an
    edit cuts away before 0 (B-frame delay, audio priming) are still needed but never shown.
    """

    def __init__(self, budget: IndexBudget | None = None) -> None:
        self._budget = budget or IndexBudget()
        self.moov_seen = False
        self.moov_box: tuple[int, bytes] | None = None  # (file offset, bytes) of the moov, for MediaInfo
        self.fragmented = False
        self.mdat_end: int | None = None  # end of the last top-level mdat seen while no moov was known
        self._tracks: dict[int, _Track] = {}
        self._movie_timescale = 0
        self._movie_duration = 0
        self._fragment_duration = 0  # from mehd, movie timescale
        self._sidx_durations_s: dict[int, float] = {}
        self._moof_seen = False

    @property
    def waiting_for(self) -> str | None:
        """Why there is no timeline yet."""
        return None if self.moov_seen else "moov box not received"

    def run(self, start: int = 0) -> Parser:
        """Walk the top-level boxes from file offset ``start``; read moov, moof and sidx, skip the rest."""
        pos = start
        while True:
            header = yield 8
            size, kind = struct.unpack(">I4s", header)
            header_len = 8
            if size == 1:
                size = _u64((yield 8), 0)
                header_len = 16
            if size == 0:  # the box runs to the end of the file
                if kind == b"mdat" and not self.moov_seen:
                    self.mdat_end = None
                yield -_TO_END
                return
            if size < header_len:
                raise ValueError(f"box {kind!r} at byte {pos} has size {size}")
            body_len = size - header_len
            if kind in (b"moov", b"moof", b"sidx") and not (kind == b"moov" and self.moov_seen):
                self._budget.hold(f"{kind.decode()} box", size, pos)
                body = yield body_len
                if kind == b"moov":
                    self._parse_moov(body)
                    self.moov_box = (pos, _box_header(size, kind, header_len) + body)
                elif kind == b"moof":
                    self._parse_moof(body, pos)
                elif not self._moof_seen:
                    self._parse_sidx(body)
            else:
                if kind == b"mdat" and not self.moov_seen:
                    self.mdat_end = pos + size
                if body_len:
                    yield -body_len
            pos += size

    # --- moov -------------------------------------------------------------------------------------------

    def _parse_moov(self, buf: bytes) -> None:
        end = len(buf)
        mvhd = _child(buf, 0, end, b"mvhd")
        if mvhd is not None:
            start = mvhd[0]
            if buf[start] == 1:
                self._movie_timescale, self._movie_duration = struct.unpack_from(">IQ", buf, start + 20)
            else:
                self._movie_timescale, self._movie_duration = struct.unpack_from(">II", buf, start + 12)
        defaults: dict[int, tuple[int, int]] = {}  # trex: the mvex may come before or after the traks
        for kind, start, stop in _children(buf, 0, end):
            if kind == b"trak":
                self._parse_trak(buf, start, stop)
            elif kind == b"mvex":
                self.fragmented = True
                for child, c_start, _ in _children(buf, start, stop):
                    if child == b"trex":
                        track_id, _sdi, duration, size = struct.unpack_from(">IIII", buf, c_start + 4)
                        defaults[track_id] = (duration, size)
                    elif child == b"mehd":
                        version = buf[c_start]
                        self._fragment_duration = _u64(buf, c_start + 4) if version == 1 else _u32(buf, c_start + 4)
        for track_id, (duration, size) in defaults.items():
            track = self._tracks.get(track_id)
            if track is not None:
                track.default_duration, track.default_size = duration, size
        self.moov_seen = True
        self.mdat_end = None

    def _parse_trak(self, buf: bytes, start: int, stop: int) -> None:
        tkhd = _child(buf, start, stop, b"tkhd")
        mdia = _child(buf, start, stop, b"mdia")
        if tkhd is None or mdia is None:
            return
        track_id = _u32(buf, tkhd[0] + (20 if buf[tkhd[0]] == 1 else 12))
        hdlr = _child(buf, mdia[0], mdia[1], b"hdlr")
        mdhd = _child(buf, mdia[0], mdia[1], b"mdhd")
        if hdlr is None or mdhd is None:
            return
        kind = _HANDLERS.get(buf[hdlr[0] + 8:hdlr[0] + 12])
        timescale = _u32(buf, mdhd[0] + (20 if buf[mdhd[0]] == 1 else 12))
        if kind is None or timescale == 0:
            return
        track = _Track(TrackSamples(kind, timescale))
        self._tracks[track_id] = track
        edts = _child(buf, start, stop, b"edts")
        elst = edts and _child(buf, edts[0], edts[1], b"elst")
        if elst:
            track.shift = _edit_shift(buf, elst, self._movie_timescale, timescale)
        minf = _child(buf, mdia[0], mdia[1], b"minf")
        stbl = minf and _child(buf, minf[0], minf[1], b"stbl")
        if stbl:
            self._parse_stbl(buf, stbl[0], stbl[1], track)

    def _parse_stbl(self, buf: bytes, start: int, stop: int, track: _Track) -> None:
        boxes = {kind: (s, e) for kind, s, e in _children(buf, start, stop)}
        fixed, count = _size_header(buf, boxes)
        if not count:
            return
        chunks = _chunks(buf, boxes)
        stts = boxes.get(b"stts")
        if stts is None:
            raise ValueError("sample table without stts")
        table = _uints(buf, stts[0] + 8, 2 * _u32(buf, stts[0] + 4))
        group = _frames_per_entry(track.samples, table) if fixed and b"ctts" not in boxes else 1
        if group > 1:
            self._list_frame_runs(chunks, fixed, min(count, sum(table[::2])), table, group, track)
            return
        self._budget.add_samples(count)
        sizes = [fixed] * count if fixed else _variable_sizes(buf, boxes, count)
        ends = _sample_ends(chunks, sizes)
        count = min(len(ends), len(sizes))
        deltas = _expand(table[::2], table[1::2], count)
        count = len(deltas)
        dts = list(accumulate(deltas, initial=0))
        offsets = [0] * count
        ctts = boxes.get(b"ctts")
        if ctts is not None:
            table = _uints(buf, ctts[0] + 8, 2 * _u32(buf, ctts[0] + 4))
            offsets = _expand(table[::2], _signed32(table[1::2]), count)
            offsets += [0] * (count - len(offsets))
        samples = track.samples
        samples.end_bytes.extend(ends[:count])
        shift = track.shift
        samples.pts.extend(d + o + shift for d, o in zip(dts, offsets))
        samples.dts.extend(dts[:count])
        samples.durations.extend(deltas)
        track.next_dts = dts[count]

    def _list_frame_runs(self, chunks: Iterator[tuple[int, int]], size: int, count: int, stts: array, group: int,
                         track: _Track) -> None:
        """List ``count`` audio frames of ``size`` bytes each (PCM) as runs of at most ``group`` frames of a chunk.

        A sample table lists uncompressed audio frame by frame (a million frames in 25 s of 48 kHz stereo); one
        entry per run keeps the index, and its budget, to what a player reads at once (ffmpeg: 1024 frames).
        """
        decode_time = _DecodeTimes(stts)
        samples, shift = track.samples, track.shift
        sample = 0
        for offset, per_chunk in chunks:
            if sample >= count:
                break
            n = min(per_chunk, count - sample)
            self._budget.add_samples(-(-n // group))
            for first in range(sample, sample + n, group):
                last = min(first + group, sample + n)
                dts = decode_time(first)
                samples.add(offset + (last - sample) * size, dts + shift, decode_time(last) - dts, dts)
            sample += n
        track.next_dts = decode_time(sample)

    # --- fragments ---------------------------------------------------------------------------------------

    def _parse_sidx(self, buf: bytes) -> None:
        version = buf[0]
        reference_id, timescale = struct.unpack_from(">II", buf, 4)
        pos = 12 + (16 if version == 1 else 8)
        count = struct.unpack_from(">H", buf, pos + 2)[0]
        table = _uints(buf, pos + 4, 3 * count)
        if timescale and reference_id not in self._sidx_durations_s:
            self._sidx_durations_s[reference_id] = sum(table[1::3]) / timescale

    def _parse_moof(self, buf: bytes, moof_start: int) -> None:
        self._moof_seen = True
        data_end = moof_start  # end of the data of the previous track fragment
        first = True
        for kind, start, stop in _children(buf, 0, len(buf)):
            if kind == b"traf":
                data_end = self._parse_traf(buf, start, stop, moof_start, moof_start if first else data_end)
                first = False

    def _parse_traf(self, buf: bytes, start: int, stop: int, moof_start: int, implicit_base: int) -> int:
        boxes = list(_children(buf, start, stop))
        tfhd = next(((s, e) for k, s, e in boxes if k == b"tfhd"), None)
        if tfhd is None:
            raise ValueError("traf without tfhd")
        pos = tfhd[0]
        flags = int.from_bytes(buf[pos + 1:pos + 4], "big")
        track_id = _u32(buf, pos + 4)
        track = self._tracks.get(track_id)
        default_duration = track.default_duration if track else 0
        default_size = track.default_size if track else 0
        shift = track.shift if track else 0
        pos += 8
        base = implicit_base
        if flags & 0x01:
            base = _u64(buf, pos)
            pos += 8
        elif flags & 0x020000:
            base = moof_start
        if flags & 0x02:
            pos += 4
        if flags & 0x08:
            default_duration = _u32(buf, pos)
            pos += 4
        if flags & 0x10:
            default_size = _u32(buf, pos)
        dts = track.next_dts if track else 0
        data = base
        for kind, s, _ in boxes:
            if kind == b"tfdt":
                dts = _u64(buf, s + 4) if buf[s] == 1 else _u32(buf, s + 4)
            elif kind == b"trun":
                self._budget.add_samples(_u32(buf, s + 4))
                data, dts = self._parse_trun(buf, s, base, data, dts, default_duration, default_size, track, shift)
        if track:
            track.next_dts = dts
        return data

    @staticmethod
    def _parse_trun(buf: bytes, pos: int, base: int, data: int, dts: int, default_duration: int,
                    default_size: int, track: _Track | None, shift: int = 0) -> tuple[int, int]:
        """Record the samples of one track run; return the end of its data and the next decode time."""
        flags = int.from_bytes(buf[pos + 1:pos + 4], "big")
        count = _u32(buf, pos + 4)  # counted against the budget by the caller
        pos += 8
        if flags & 0x01:
            data = base + struct.unpack_from(">i", buf, pos)[0]
            pos += 4
        if flags & 0x04:
            pos += 4
        fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
        record = ">" + "".join("i" if bit == 0x800 else "I" for bit in fields)
        length = 4 * len(fields)
        if pos + count * length > len(buf):
            raise ValueError("trun runs past the end of its box")
        if length:
            rows = struct.iter_unpack(record, buf[pos:pos + count * length])
        else:
            rows = repeat((), count)
        has_duration, has_size, has_cts = 0x100 in fields, 0x200 in fields, 0x800 in fields
        index_size = fields.index(0x200) if has_size else 0
        index_cts = fields.index(0x800) if has_cts else 0
        for row in rows:
            duration = row[0] if has_duration else default_duration
            data += row[index_size] if has_size else default_size
            if track is not None:
                track.samples.add(data, dts + shift + (row[index_cts] if has_cts else 0), duration, dts)
            dts += duration
        return data, dts

    # --- result ------------------------------------------------------------------------------------------

    def unplayable(self, whole: bool) -> str | None:
        """Why the file holds nothing to play, once that is certain (``whole``: every byte was received).

        A plain moov lists every sample, so it settles it; a fragmented file may list samples in later fragments.
        """
        if not self.moov_seen or not (whole or not self.fragmented):
            return None
        if not self._tracks:
            return "no track: the moov lists no audio or video track"
        if not any(len(t.samples) for t in self._tracks.values()):
            return "no sample: the audio and video tracks list no sample"
        return None

    def end_of_file(self) -> None:
        """Every byte of the file has been fed: nothing to close (the moov or each moof lists its samples whole)."""

    def declared_duration_s(self) -> float | None:
        """The duration the header declares: mvhd for a plain file; mehd or sidx for a fragmented one."""
        if not self.fragmented:
            if self._movie_timescale and self._movie_duration:
                return self._movie_duration / self._movie_timescale
            return None
        if self._movie_timescale and self._fragment_duration:
            return self._fragment_duration / self._movie_timescale
        return max(self._sidx_durations_s.values(), default=None)

    def timeline(self) -> MediaTimeline | None:
        """The timeline once the moov is known, else None."""
        if not self.moov_seen:
            return None
        tracks = [t.samples for t in self._tracks.values()]
        source = "mp4-fragments" if self.fragmented else "mp4-sample-table"
        return build_timeline(source, tracks, self.declared_duration_s(), origin_s=self._origin_s())

    def _origin_s(self) -> float | None:
        """Where presentation starts: the earliest time shown over the tracks (an edit list hides what is before 0)."""
        firsts = []
        for track in self._tracks.values():
            pts = track.samples.pts
            if not pts:
                continue
            shown = min((p for p in pts if p >= 0), default=None) if track.shift else min(pts)
            if shown is not None:
                firsts.append(shown / track.samples.timescale)
        return min(firsts, default=None)
