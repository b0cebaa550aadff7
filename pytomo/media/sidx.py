"""The ISO BMFF segment index box (``sidx``, ISO/IEC 14496-12 8.16.3), read into references with byte ranges."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pytomo.errors import MediaError

MAX_REFERENCES = 100_000


@dataclass(frozen=True)
class SidxReference:
    """One reference: a subsegment (or, with ``reference_type`` 1, another sidx) and the media time it covers."""

    reference_type: int  # 0: media (moof+mdat), 1: another sidx
    size_bytes: int
    duration: int  # in the sidx timescale
    starts_with_sap: bool
    sap_type: int


@dataclass(frozen=True)
class Sidx:
    """A segment index: where the referenced bytes start and what each reference covers."""

    version: int
    reference_id: int
    timescale: int
    earliest_presentation_time: int
    first_offset: int  # from the first byte after the sidx box to the first referenced byte
    box_size_bytes: int  # the sidx box itself, header included
    references: tuple[SidxReference, ...]

    def ranges(self, sidx_offset: int) -> list[tuple[int, int]]:
        """First and last byte (inclusive) of every reference, for a sidx box that starts at ``sidx_offset``."""
        out, pos = [], sidx_offset + self.box_size_bytes + self.first_offset
        for ref in self.references:
            out.append((pos, pos + ref.size_bytes - 1))
            pos += ref.size_bytes
        return out

    def durations_s(self) -> list[float]:
        """Duration of every reference, in seconds."""
        return [ref.duration / self.timescale for ref in self.references]

    def starts_s(self) -> list[float]:
        """Earliest presentation time of every reference, in seconds."""
        out, t = [], self.earliest_presentation_time
        for ref in self.references:
            out.append(t / self.timescale)
            t += ref.duration
        return out


def find_sidx(data: bytes) -> tuple[int, Sidx]:
    """The first top-level ``sidx`` box in ``data``: its offset within ``data`` and its contents."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > len(data):
                break
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < header:
            raise MediaError(f"invalid MP4 box size {size} at byte {pos}")
        if kind == b"sidx":
            return pos, parse_sidx(data[pos:pos + size])
        pos += size
    raise MediaError("no sidx box in the index range")


def parse_sidx(box: bytes) -> Sidx:
    """A whole ``sidx`` box (header included), version 0 or 1."""
    try:
        size, kind = struct.unpack_from(">I4s", box, 0)
        pos = 8
        if size == 1:
            size, pos = struct.unpack_from(">Q", box, 8)[0], 16
        if kind != b"sidx":
            raise MediaError(f"expected a sidx box, found {kind!r}")
        if size > len(box):
            raise MediaError(f"the sidx box is truncated: {len(box)} of {size} bytes")
        version = box[pos]
        pos += 4  # version and flags
        reference_id, timescale = struct.unpack_from(">II", box, pos)
        pos += 8
        if version == 0:
            earliest, first_offset = struct.unpack_from(">II", box, pos)
            pos += 8
        elif version == 1:
            earliest, first_offset = struct.unpack_from(">QQ", box, pos)
            pos += 16
        else:
            raise MediaError(f"unknown sidx version {version}")
        _reserved, count = struct.unpack_from(">HH", box, pos)
        pos += 4
        if timescale == 0:
            raise MediaError("the sidx timescale is 0")
        if count > MAX_REFERENCES or pos + 12 * count > size:
            raise MediaError(f"the sidx box cannot hold its {count} references")
        refs = []
        for _ in range(count):
            word, duration, sap = struct.unpack_from(">III", box, pos)
            pos += 12
            refs.append(SidxReference(reference_type=word >> 31, size_bytes=word & 0x7FFFFFFF, duration=duration,
                                      starts_with_sap=bool(sap >> 31), sap_type=(sap >> 28) & 0x7))
    except struct.error as exc:
        raise MediaError(f"the sidx box is truncated: {exc}") from exc
    except IndexError as exc:
        raise MediaError("the sidx box is truncated") from exc
    return Sidx(version=version, reference_id=reference_id, timescale=timescale, earliest_presentation_time=earliest,
                first_offset=first_offset, box_size_bytes=size, references=tuple(refs))
