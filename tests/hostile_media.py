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


# --- container indexes: what a streaming indexer must stay bounded on, and files with nothing to play ------------

HUGE_MOOV_DECLARED_BYTES = 267_911_168  # a moov header declaring 255.5 MiB, past the 64 MiB budget
HUGE_EBML_SIZE = 1 << 55  # an EBML element size no file can have


def _ebml(element_id: int, payload: bytes = b"", size: int | None = None) -> bytes:
    """One EBML element with an 8-byte size (``size`` overrides the payload's; None with no payload: unknown)."""
    length = len(payload) if size is None else size
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + (0x01 << 56 | length).to_bytes(8, "big") \
        + payload


def _ebml_unknown(element_id: int) -> bytes:
    """The header of a master element of unknown size (all size bits set)."""
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + b"\x01" + b"\xff" * 7


def webm_head(with_cluster: bool = True) -> bytes:
    """EBML header, a Segment of unknown size, Info and Tracks (one VP9 track, number 1) and, optionally, the
    header of a Cluster of unknown size."""
    ebml = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    info = _ebml(0x1549A966, _ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big")))
    entry = _ebml(0xAE, _ebml(0xD7, b"\x01") + _ebml(0x83, b"\x01") + _ebml(0x86, b"V_VP9"))
    tracks = _ebml(0x1654AE6B, entry)
    return ebml + _ebml_unknown(0x18538067) + info + tracks + (_ebml_unknown(0x1F43B675) if with_cluster else b"")


def webm_huge_timecode(declared_bytes: int = HUGE_EBML_SIZE) -> bytes:
    """A WebM head whose first Cluster's ``Timecode`` declares ``declared_bytes`` (the payload is what follows)."""
    return webm_head() + b"\xe7" + (0x01 << 56 | declared_bytes).to_bytes(8, "big")


def webm_huge_tracks(declared_bytes: int = HUGE_EBML_SIZE) -> bytes:
    """EBML header and a Segment whose ``Tracks`` element declares ``declared_bytes``."""
    ebml = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    return ebml + _ebml_unknown(0x18538067) + _ebml(0x1654AE6B, size=declared_bytes)


def webm_no_cluster() -> bytes:
    """A whole WebM file with its EBML header, Segment, Info and Tracks, and no Cluster: nothing to play."""
    return webm_head(with_cluster=False)


def mp4_huge_moov(declared_bytes: int = HUGE_MOOV_DECLARED_BYTES) -> bytes:
    """An ftyp and the header of a moov declaring ``declared_bytes`` (the body is whatever the stream sends)."""
    return _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41") + struct.pack(">I", declared_bytes) \
        + b"moov"


def _mvhd() -> bytes:
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    return _full_box(b"mvhd", struct.pack(">IIII", 0, 0, 1000, 10_000), struct.pack(">IH", 0x10000, 0x100),
                     b"\0" * 10, matrix, b"\0" * 24, struct.pack(">I", 2))


def mp4_no_track() -> bytes:
    """A whole MP4: ftyp, a moov with an mvhd and no trak, and an mdat of 1000 bytes."""
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    return ftyp + _box(b"moov", _mvhd()) + _box(b"mdat", b"\0" * 1000)


def mp4_no_sample() -> bytes:
    """A whole MP4 whose one video trak has empty sample tables, and an mdat of 1000 bytes."""
    head = mp4_huge_samples(samples=0)
    head = head[:head.rfind(struct.pack(">I", 1) + b"mdat")]
    return head + _box(b"mdat", b"\0" * 1000)


def flv_no_tag() -> bytes:
    """A whole FLV: the header and PreviousTagSize0, then nothing."""
    return b"FLV\x01\x05" + struct.pack(">I", 9) + b"\0\0\0\0"


def flv_huge_tag(size: int = 0xFFFFFF, body_bytes: int = 1000) -> bytes:
    """A whole FLV: an onMetaData of 10 s, then one AVC key frame tag whose size claims ``size`` bytes (16 MiB - 1,
    the most 24 bits say) followed by ``body_bytes`` of it only."""
    meta = b"\x02" + struct.pack(">H", 10) + b"onMetaData" + b"\x08" + struct.pack(">I", 1)
    meta += struct.pack(">H", 8) + b"duration" + b"\x00" + struct.pack(">d", 10.0) + b"\x00\x00\x09"
    out = _flv(meta)
    video = bytes([9]) + size.to_bytes(3, "big") + b"\0\0\0\0" + b"\0\0\0"
    return out + video + bytes([0x17, 1, 0, 0, 0]) + b"\x42" * (body_bytes - 5)


def stream(head: bytes, total_bytes: int, chunk_bytes: int = 1 << 20, fill: int = 0):
    """``head`` then filler bytes up to ``total_bytes``, in chunks of ``chunk_bytes`` (one buffer reused: the
    stream is never held)."""
    yield head
    filler = bytes([fill]) * chunk_bytes
    sent = len(head)
    while sent < total_bytes:
        piece = filler if total_bytes - sent >= chunk_bytes else filler[:total_bytes - sent]
        sent += len(piece)
        yield piece


def mp4_fragmented_head() -> bytes:
    """ftyp and a moov with one H.264 trak (id 1, no sample) and an mvex whose trex gives 512-tick samples."""
    head = mp4_huge_samples(samples=0)
    at = head.find(b"trak") - 4
    trak = head[at:at + struct.unpack_from(">I", head, at)[0]]
    trex = _full_box(b"trex", struct.pack(">IIIII", 1, 1, 512, 100, 0))
    ftyp = _box(b"ftyp", b"iso5", struct.pack(">I", 0x200), b"iso5iso6mp41")
    return ftyp + _box(b"moov", _mvhd(), trak, _box(b"mvex", trex))


def mp4_trun_bomb_fragment(samples: int) -> bytes:
    """A moof of 60-odd bytes whose one trun lists ``samples`` samples with no per-sample field (trex defaults)."""
    tfhd = _box(b"tfhd", b"\0\x02\0\0", struct.pack(">I", 1))  # default-base-is-moof
    trun = _box(b"trun", b"\0\0\0\0", struct.pack(">I", samples))
    return _box(b"moof", _full_box(b"mfhd", struct.pack(">I", 1)), _box(b"traf", tfhd, trun))


def stream_of(head: bytes, unit: bytes, total_bytes: int):
    """``head`` then ``unit`` over and over up to ``total_bytes`` (whole units), in pieces of about 1 MiB."""
    yield head
    piece = unit * max(1, (1 << 20) // len(unit))
    sent = len(head)
    while sent < total_bytes:
        sent += len(piece)
        yield piece


def mp4_sample_tables(stsc: list[tuple[int, int]], chunk_offsets: list[int], sizes: list[int]) -> bytes:
    """ftyp and a moov with one video trak whose sample tables are exactly these (stsc: first chunk, samples per
    chunk), 1-tick samples; no mdat."""
    tkhd = _full_box(b"tkhd", struct.pack(">IIIII", 0, 0, 1, 0, 0), b"\0" * 60)
    mdhd = _full_box(b"mdhd", struct.pack(">IIII", 0, 0, 1000, 0), b"\0\0\0\0")
    hdlr = _full_box(b"hdlr", b"\0\0\0\0vide", b"\0" * 12, b"\0")
    stbl = _box(b"stbl",
                _full_box(b"stts", struct.pack(">III", 1, len(sizes), 1)),
                _full_box(b"stsc", struct.pack(">I", len(stsc)),
                          b"".join(struct.pack(">III", f, n, 1) for f, n in stsc)),
                _full_box(b"stsz", struct.pack(">II", 0, len(sizes)), struct.pack(f">{len(sizes)}I", *sizes)),
                _full_box(b"stco", struct.pack(">I", len(chunk_offsets)),
                          struct.pack(f">{len(chunk_offsets)}I", *chunk_offsets)))
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, _box(b"minf", stbl)))
    return _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom") + _box(b"moov", _mvhd(), trak)


def mp4_stsc_zigzag(entries: int = 4000, chunks: int = 20_000) -> bytes:
    """A sample-to-chunk table whose entries go back to chunk 1 and forward to the last, over and over: read
    naively, every other entry walks every chunk."""
    stsc = [(1 if k % 2 == 0 else chunks, 0) for k in range(entries)]
    return mp4_sample_tables(stsc, list(range(chunks)), [1])
