"""Hostile media files that crash, hang or bloat MediaInfo when it runs in the crawler's own process."""

from __future__ import annotations

import struct

NESTED_OBJECTS = 10_000
_SPS_PPS = bytes.fromhex(  # an avcC payload: H.264 High, 640x360 (from a lab file)
    "0164001effe100246764001eacd940a02ff9701100000300010000030032e04000d32c00697e0a30078b16cb01000468efbcb0fdf8f800")
HUGE_SAMPLE_BYTES = 0xA000_0000  # 2.5 GiB: what the stsz of the bloating MP4 says each sample weighs
BLOATING_MP4_DECLARED_BYTES = 0xC000_0000  # the Content-Length a server gives with it (a sparse file of 3 GiB)


def _flv(script: bytes) -> bytes:
    """An FLV (audio and video flags set) holding one script tag."""
    header = b"FLV\x01\x05" + struct.pack(">I", 9) + b"\0\0\0\0"
    tag = b"\x12" + struct.pack(">I", len(script))[1:] + b"\0\0\0\0" + b"\0\0\0" + script
    return header + tag + struct.pack(">I", len(tag))


def _amf_string(text: bytes) -> bytes:
    return b"\x02" + struct.pack(">H", len(text)) + text


def flv_nested_objects(depth: int = NESTED_OBJECTS) -> bytes:
    """An FLV whose ``onMetaData`` nests ``depth`` AMF0 objects (marker 0x03), each the value of key ``a``."""
    body = _amf_string(b"onMetaData") + b"\x03" + b"\x00\x01a\x03" * depth + b"\x00\x00\x09" * (depth + 1)
    return _flv(body)


def flv_huge_strict_array(count: int = 0xFFFF_FFFF) -> bytes:
    """An FLV whose ``onMetaData`` holds an AMF0 strict array (marker 0x0A) declaring ``count`` elements, and none."""
    body = (_amf_string(b"onMetaData") + b"\x08" + struct.pack(">I", 1) + b"\x00\x01a\x0a" + struct.pack(">I", count)
            + b"\x00\x00\x09")
    return _flv(body)


def _box(kind: bytes, *payload: bytes) -> bytes:
    data = b"".join(payload)
    return struct.pack(">I", 8 + len(data)) + kind + data


def _full_box(kind: bytes, *payload: bytes) -> bytes:
    return _box(kind, b"\0\0\0\0", *payload)


def mp4_huge_samples(sample_bytes: int = HUGE_SAMPLE_BYTES, samples: int = 4) -> bytes:
    """A small MP4 head (about 600 bytes) of one H.264 track whose ``stsz`` gives every sample ``sample_bytes``.

    Served with a Content-Length of :data:`BLOATING_MP4_DECLARED_BYTES` (so the probe's sparse file is that
    large), MediaInfo reads into memory what it takes for the first samples: a few hundred MB.
    """
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _full_box(b"mvhd", struct.pack(">IIII", 0, 0, 1000, 10_000), struct.pack(">IH", 0x10000, 0x100),
                     b"\0" * 10, matrix, b"\0" * 24, struct.pack(">I", 2))
    tkhd = _box(b"tkhd", b"\0\0\0\x03", struct.pack(">IIIII", 0, 0, 1, 0, 10_000), b"\0" * 8,
                struct.pack(">HHHH", 0, 0, 0, 0), matrix, struct.pack(">II", 640 << 16, 360 << 16))
    mdhd = _full_box(b"mdhd", struct.pack(">IIII", 0, 0, 12_800, 128_000), struct.pack(">HH", 0x55C4, 0))
    hdlr = _full_box(b"hdlr", b"\0\0\0\0vide", b"\0" * 12, b"VideoHandler\0")
    avc1 = _box(b"avc1", b"\0" * 6, struct.pack(">H", 1), b"\0" * 16, struct.pack(">HH", 640, 360),
                struct.pack(">II", 0x480000, 0x480000), b"\0" * 4, struct.pack(">H", 1), b"\0" * 32,
                struct.pack(">Hh", 0x18, -1), _box(b"avcC", _SPS_PPS))
    stbl = _box(b"stbl",
                _full_box(b"stsd", struct.pack(">I", 1), avc1),
                _full_box(b"stts", struct.pack(">III", 1, samples, 512)),
                _full_box(b"stsc", struct.pack(">IIII", 1, 1, samples, 1)),
                _full_box(b"stsz", struct.pack(">II", sample_bytes, samples)),
                _full_box(b"stco", struct.pack(">II", 1, 0)))
    dinf = _box(b"dinf", _full_box(b"dref", struct.pack(">I", 1), _box(b"url ", b"\0\0\0\x01")))
    minf = _box(b"minf", _full_box(b"vmhd", b"\0" * 8), dinf, stbl)
    moov = _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf)))
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    head = ftyp + moov
    chunk = len(head) + 16  # the one chunk starts right after the mdat header (with its 64-bit size)
    stco_at = head.rfind(b"stco") + 12  # past the type, version and flags, and entry count
    head = head[:stco_at] + struct.pack(">I", chunk) + head[stco_at + 4:]
    return head + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", BLOATING_MP4_DECLARED_BYTES - len(head))
