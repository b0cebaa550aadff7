"""What a container index may hold in memory on untrusted bytes, and the problems crossing it raises."""

from __future__ import annotations

BOX_LIMIT_BYTES = 64 * 1024 * 1024  # default budget of one box or element held whole (Settings.media_box_limit_bytes)
SAMPLE_BYTES_PER_BUDGET = 64  # one index entry is counted against the budget as this many bytes (it costs ~100)


class IndexLimitError(Exception):
    """The bytes ask the index for more than its budget, or declare a size they cannot have: the index stops.

    ``kind`` is the problem's machine-readable name (``box_too_large``, ``impossible_size``, ``too_many_samples``).
    """

    kind = "index_limit"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class IndexBudget:
    """The limits one indexer works within: the largest box held whole, the file's size, the samples listed.

    The sample budget counts the bytes the index itself holds: one entry per sample listed, where a sample is a
    frame, a tag or a block, but one entry per run of fixed-size audio frames (PCM, which a sample table lists
    frame by frame: a million in 25 s of 48 kHz audio), as a player reads them.
    """

    def __init__(self, box_limit_bytes: int = BOX_LIMIT_BYTES, file_size_bytes: int | None = None) -> None:
        if box_limit_bytes < 1:
            raise ValueError(f"box_limit_bytes must be at least 1, not {box_limit_bytes}")
        self.box_limit_bytes = box_limit_bytes
        self.file_size_bytes = file_size_bytes  # the whole file's size when known (Content-Length)
        self.samples_max = max(1, box_limit_bytes // SAMPLE_BYTES_PER_BUDGET)  # 1,048,576 for 64 MiB
        self.samples = 0

    def hold(self, what: str, size_bytes: int, offset: int | None = None) -> None:
        """Check that ``what`` (a box or element the index reads whole) of ``size_bytes`` at ``offset`` may be held.

        ``offset`` is where its payload starts in the file, when known: it must end within the file.
        """
        end = None if offset is None else offset + size_bytes
        if self.file_size_bytes is not None and end is not None and end > self.file_size_bytes:
            raise IndexLimitError(f"the {what} declares {size_bytes} bytes at byte {offset}, past the end of the "
                                  f"{self.file_size_bytes}-byte file", "impossible_size")
        if size_bytes > self.box_limit_bytes:
            raise IndexLimitError(f"the {what} declares {size_bytes} bytes, more than the "
                                  f"{self.box_limit_bytes}-byte budget", "box_too_large")

    def request(self, size_bytes: int) -> None:
        """A parser asks to be given ``size_bytes`` whole (the backstop behind :meth:`hold`)."""
        if size_bytes > self.box_limit_bytes:
            raise IndexLimitError(f"the parser asks for {size_bytes} bytes at once, more than the "
                                  f"{self.box_limit_bytes}-byte budget", "box_too_large")

    def add_samples(self, count: int) -> None:
        """``count`` more index entries (samples, or runs of audio frames) are about to be listed."""
        self.samples += count
        if self.samples > self.samples_max:
            raise IndexLimitError(f"the index lists more than {self.samples_max} samples (the budget of "
                                  f"{self.box_limit_bytes} bytes at {SAMPLE_BYTES_PER_BUDGET} bytes a sample)",
                                  "too_many_samples")
