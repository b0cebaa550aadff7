"""Short lab videos shared by the media tests, and ffmpeg as the independent judge of what is playable."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytomo.lab.media import CONTAINERS, LabMedia, MediaSpec, ensure_media, ffmpeg_exe
from pytomo.media.index import MediaIndexer

TEST_DURATION_S = 10.0
CHUNK_BYTES = 256 * 1024


@pytest.fixture(scope="session")
def media_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """PYTOMO_CACHE_DIR pointed at one folder of the test session (never the user's cache)."""
    folder = tmp_path_factory.getbasetemp() / "pytomo-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTOMO_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session", params=CONTAINERS)
def lab_media(request: pytest.FixtureRequest, media_cache: Path) -> LabMedia:
    """A 10 s lab video in each container, made once per session in the session cache."""
    return ensure_media(MediaSpec(request.param, duration_s=TEST_DURATION_S))


def index_bytes(data: bytes, chunk_bytes: int = CHUNK_BYTES) -> MediaIndexer:
    """An indexer fed ``data`` in chunks of ``chunk_bytes``."""
    indexer = MediaIndexer()
    for start in range(0, len(data), chunk_bytes):
        indexer.feed(data[start:start + chunk_bytes])
    return indexer


def ffmpeg_playable_s(path: Path) -> float:
    """Media time ffmpeg decodes from ``path``: the minimum over its audio and video streams."""
    ends = []
    for stream in ("0:v", "0:a"):
        done = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-nostats", "-i", str(path), "-map",
                               f"{stream}?", "-progress", "pipe:1", "-f", "null", "-"],
                              capture_output=True, text=True, check=False)
        times = [int(m) for m in re.findall(r"^out_time_us=(\d+)$", done.stdout, re.M)]
        if times:
            ends.append(times[-1] / 1e6)
    return min(ends) if ends else 0.0
