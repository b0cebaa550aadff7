"""Streaming media index: fed a download chunk by chunk, it keeps only headers and builds the media timeline."""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator
from typing import Protocol

from pytomo.media.budget import BOX_LIMIT_BYTES, IndexBudget, IndexLimitError
from pytomo.media.flv import FlvIndex
from pytomo.media.mp4 import TOP_LEVEL_TYPES, Mp4Index
from pytomo.media.mpegts import PACKET_BYTES, SYNC, TsIndex
from pytomo.media.timeline import MediaTimeline
from pytomo.media.webm import WebmIndex

SNIFF_BYTES = 512  # at most this much is held back to recognise the container
_MALFORMED = (ValueError, IndexError, OverflowError, struct.error)
_WHITESPACE = b" \t\r\n\x0b\x0c"
_BOM = b"\xef\xbb\xbf"


class _ContainerIndex(Protocol):
    def run(self) -> Generator[int, bytes, None]: ...

    @property
    def waiting_for(self) -> str | None: ...

    def timeline(self) -> MediaTimeline | None: ...

    def unplayable(self, whole: bool) -> str | None: ...

    def end_of_file(self) -> None: ...


_INDEXES: dict[str, Callable[[IndexBudget], _ContainerIndex]] = {
    "mp4": Mp4Index, "webm": WebmIndex, "flv": FlvIndex, "ts": TsIndex}


def _is_ts(head: bytes) -> bool | None:
    """Whether ``head`` starts an MPEG-TS stream: a sync byte every 188 bytes (three of them); None: need more."""
    if not head or head[0] != SYNC:
        return False
    syncs = [head[k * PACKET_BYTES] for k in range(3) if k * PACKET_BYTES < len(head)]
    if any(b != SYNC for b in syncs):
        return False
    return True if len(syncs) == 3 else None


class _Pump:
    """Drives a parser generator over chunks: it yields n > 0 to be sent the next n bytes, -n to skip n bytes.

    Skipped bytes are only counted, so the cost of a chunk is one step per parser request it completes. No request
    for more than the budget is ever buffered.
    """

    def __init__(self, parser: Generator[int, bytes, None], budget: IndexBudget) -> None:
        self._parser = parser
        self._budget = budget
        self._buffer = bytearray()
        self.finished = False
        self._want = 0
        self._want = self._start()

    def _start(self) -> int:
        """Runs the parser up to its first request."""
        try:
            want = next(self._parser)
        except StopIteration:
            self.finished = True
            return 0
        if want > 0:
            self._budget.request(want)
        return want

    def _step(self, value: bytes) -> int:
        try:
            want = self._parser.send(value)
        except StopIteration:
            self.finished = True
            return 0
        if want > 0:
            self._budget.request(want)
        return want

    def feed(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        want, buffer = self._want, self._buffer
        while not self.finished and (pos < end or want == 0):
            if want < 0:
                take = min(-want, end - pos)
                pos += take
                want += take
                if want == 0:
                    want = self._step(b"")
            elif not buffer and end - pos >= want:
                chunk = bytes(data[pos:pos + want])
                pos += want
                want = self._step(chunk)
            else:
                take = min(want - len(buffer), end - pos)
                buffer += data[pos:pos + take]
                pos += take
                if len(buffer) == want:
                    chunk = bytes(buffer)
                    buffer.clear()
                    want = self._step(chunk)
        self._want = want


def sniff(head: bytes) -> str | None:
    """The container of a file starting with ``head`` ("mp4", "webm", "flv", "ts", "html", "unknown").

    None: more bytes are needed to tell.
    """
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    ts = _is_ts(head)
    if ts is not False:
        return "ts" if ts else (None if len(head) < SNIFF_BYTES else "unknown")
    if head[:3] == b"FLV" and len(head) >= 4:
        return "flv" if head[3] == 1 else "unknown"
    if len(head) >= 8 and head[4:8] in TOP_LEVEL_TYPES:
        size = int.from_bytes(head[:4], "big")
        return "mp4" if size in (0, 1) or size >= 8 else "unknown"
    text = head[len(_BOM):] if head.startswith(_BOM) else head
    text = text.lstrip(_WHITESPACE)
    if text.startswith(b"<"):
        lowered = text[:9].lower()
        if lowered.startswith((b"<!doctype", b"<html")):
            return "html"
        if len(text) < 9 and (b"<!doctype".startswith(lowered) or b"<html".startswith(lowered)):
            return None
        return "unknown"
    if not text:
        return None if len(head) < SNIFF_BYTES else "unknown"
    if len(head) < 8 and any(magic.startswith(head) for magic in (b"\x1a\x45\xdf\xa3", b"FLV\x01")):
        return None
    return None if len(head) < 8 else "unknown"


class MediaIndexer:
    """Fed the bytes of one media file in order; builds its MediaTimeline from the container's own index.

    No box or element larger than ``box_limit_bytes`` is held, nor more samples than the budget allows; one whose
    declared size is larger, or runs past ``file_size_bytes`` (the Content-Length, when known), stops the index
    with a ``problem`` whose ``problem_kind`` says which limit it crossed.
    """

    def __init__(self, box_limit_bytes: int = BOX_LIMIT_BYTES, file_size_bytes: int | None = None) -> None:
        self.container: str | None = None  # "mp4", "webm", "flv", "ts" once sniffed
        self.received_bytes = 0
        self._budget = IndexBudget(box_limit_bytes, file_size_bytes)
        self._fatal: str | None = None
        self._fatal_kind: str | None = None
        self._head = bytearray()
        self._index: _ContainerIndex | None = None
        self._pump: _Pump | None = None
        self._tail_pump: _Pump | None = None
        self._tail_next: int | None = None
        self._parsed_version = 0  # bumped whenever bytes reach a parser
        self._cached: tuple[int, MediaTimeline | None] | None = None

    @property
    def box_limit_bytes(self) -> int:
        """The largest box or element held whole."""
        return self._budget.box_limit_bytes

    @property
    def file_size_bytes(self) -> int | None:
        """The whole file's size when known (the Content-Length of an uncompressed body)."""
        return self._budget.file_size_bytes

    @file_size_bytes.setter
    def file_size_bytes(self, size_bytes: int | None) -> None:
        self._budget.file_size_bytes = size_bytes

    @property
    def problem_kind(self) -> str | None:
        """What stopped the index: html, unknown_container, malformed, box_too_large, impossible_size,
        too_many_samples; None while it runs."""
        return self._fatal_kind

    @property
    def problem(self) -> str | None:
        """Why no timeline can be built (None while one can, or while more bytes may still tell)."""
        if self._fatal is not None:
            return self._fatal
        if self._index is None:
            if not self.received_bytes:
                return "no bytes received"
            return f"too few bytes to recognise the container ({self.received_bytes} received)"
        return self._index.waiting_for

    def feed(self, data: bytes | memoryview) -> None:
        """The next bytes of the file."""
        view = memoryview(data).cast("B")
        self.received_bytes += len(view)
        if self._fatal is not None:
            return
        if self._pump is None:
            take = SNIFF_BYTES - len(self._head)
            self._head += view[:take]
            view = view[take:]
            kind = sniff(bytes(self._head))
            if kind is None:
                return
            if not self._start(kind):
                return
            head, self._head = bytes(self._head), bytearray()
            self._run(self._pump, memoryview(head))
        if view and self._fatal is None:
            self._run(self._pump, view)

    def _start(self, kind: str) -> bool:
        if kind == "html":
            self._stop("html", "HTML page where media was expected")
            return False
        if kind == "unknown":
            self._stop("unknown_container", f"unknown container (first bytes {bytes(self._head[:4]).hex()})")
            return False
        self.container = kind
        index = _INDEXES[kind](self._budget)
        self._index = index
        self._pump = self._new_pump(index.run())
        return True

    def _stop(self, kind: str, message: str) -> None:
        self._fatal_kind, self._fatal = kind, message

    def _new_pump(self, parser: Generator[int, bytes, None]) -> _Pump | None:
        """A pump over ``parser``, or None when its first request already stops the index."""
        try:
            return _Pump(parser, self._budget)
        except IndexLimitError as exc:  # pragma: no cover - every parser first asks for a few header bytes
            self._stop(exc.kind, f"media/{exc.kind}: {exc}")
            return None

    def _run(self, pump: _Pump | None, data: memoryview) -> None:
        if pump is None:
            return
        self._parsed_version += 1
        try:
            pump.feed(data)
        except IndexLimitError as exc:
            self._stop(exc.kind, f"media/{exc.kind}: {exc}")
        except _MALFORMED as exc:
            self._stop("malformed", f"malformed {self.container} data: {exc}")

    def tail_request(self) -> tuple[int, int | None] | None:
        """For an MP4 whose moov follows the mdat: (offset, None = to the end) of the bytes still needed."""
        index = self._index
        if self._fatal is not None or not isinstance(index, Mp4Index) or index.moov_seen or index.mdat_end is None:
            return None
        size = self._budget.file_size_bytes
        if size is not None and index.mdat_end >= size:
            return None  # the mdat runs to (or past) the end of the file: no moov can follow it
        return index.mdat_end, None

    def feed_tail(self, offset: int, data: bytes) -> None:
        """Bytes from ``offset`` (as asked by tail_request, then contiguous) fetched with an HTTP Range request."""
        index = self._index
        if not isinstance(index, Mp4Index):
            raise ValueError("feed_tail is only for an MP4 file whose moov follows the mdat")
        if self._tail_next is None:
            self._tail_next = offset
            if self._fatal is None:
                self._tail_pump = self._new_pump(index.run(offset))
        if offset != self._tail_next:
            raise ValueError(f"tail bytes must be contiguous: expected offset {self._tail_next}, got {offset}")
        self._tail_next = offset + len(data)
        if self._fatal is None:
            self._run(self._tail_pump, memoryview(data).cast("B"))

    def moov_box(self) -> tuple[int, bytes] | None:
        """(file offset, bytes) of an MP4's moov box once parsed, so MediaInfo can be shown it where it lies."""
        index = self._index
        return index.moov_box if isinstance(index, Mp4Index) else None

    def end_of_file(self) -> None:
        """Every byte of the file has been fed: a parser that can only close its last unit on the next one
        (an MPEG-TS PES without a length) closes it now, and one that lists samples as they come (WebM, FLV) knows
        that no other follows."""
        index = self._index
        if self._fatal is None and index is not None:
            self._parsed_version += 1
            try:
                index.end_of_file()
            except IndexLimitError as exc:  # the PES it closes may cross the sample budget
                self._stop(exc.kind, f"media/{exc.kind}: {exc}")

    def unplayable(self, whole: bool) -> str | None:
        """Why the file holds nothing playable, once its index says so for certain; None otherwise.

        ``whole``: every byte of the file has been fed (else only a complete index, such as a moov, can tell).
        """
        if self._fatal is not None or self._index is None:
            return None
        return self._index.unplayable(whole)

    def timeline(self) -> MediaTimeline | None:
        """The timeline from what has been parsed so far; None when there is a problem.

        Built on demand (linear in the number of samples); reused while no new bytes arrive.
        """
        if self._fatal is not None or self._index is None:
            return None
        if self._cached is None or self._cached[0] != self._parsed_version:
            self._cached = (self._parsed_version, self._index.timeline())
        return self._cached[1]
