"""A live DASH channel made by ffmpeg in real time into nginx's document root, and every version of its MPD and
every segment as ffmpeg wrote them, with their times (the lab's truth for live DASH).

ffmpeg's dash muxer (``-f dash``) reads the test picture at its own pace (``-re``), encodes it at the video's
bitrate (video only: the live player follows one representation) and writes a dynamic MPD with a SegmentTemplate
(``-use_template 1``), numbered by its duration (``-use_timeline 0``) or timed by a SegmentTimeline
(``-use_timeline 1``), a window of LIST_SIZE segments (``-window_size``; older ones deleted after
``-extra_window_size``), each segment written to a temporary file and renamed (``-streaming 0``, no low-latency
chunks: ``-ldash 0``), with a suggestedPresentationDelay of DELAY_SEGMENTS segments. The watcher records each new
MPD (the file's own modification time, when it was seen, its type, publishTime, availabilityStartTime and text) and
each new segment file with its modification time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pytomo.lab.live import SIZE, LiveChannel, LiveSpec
from pytomo.lab.media import ffmpeg_exe

MPD = "live.mpd"
DELAY_SEGMENTS = 3  # suggestedPresentationDelay in segments (ffmpeg's own is one segment: a player at that delay
# needs each segment the moment it becomes available)
_FPS = 25
_SEGMENT = re.compile(r"chunk-stream[0-9]+-[0-9]+\.m4s")
_ATTRS = ("type", "publishTime", "availabilityStartTime", "minimumUpdatePeriod", "timeShiftBufferDepth",
          "suggestedPresentationDelay")


def read_mpd_version(text: str) -> dict[str, Any]:
    """The MPD attributes a live player times itself by, as ffmpeg wrote them (a plain reading of its output)."""
    head = text.split("<Period", 1)[0]
    out: dict[str, Any] = {}
    for name in _ATTRS:
        m = re.search(rf'\s{name}="([^"]*)"', head)
        out[name] = m.group(1) if m else None
    out["ended"] = out["type"] == "static"
    return out


class DashLiveChannel(LiveChannel):
    """One live DASH channel: ffmpeg's dash muxer writing into ``root`` (served by nginx as /s/<video id>/)."""

    manifest = MPD

    def __init__(self, video_id: str, spec: LiveSpec, record_path: Path | None = None, timeline: bool = False) -> None:
        self.timeline = timeline
        super().__init__(video_id, spec, record_path)
        self.segment_times: dict[str, float] = {}  # segment file -> its modification time (ffmpeg wrote it)

    def command(self) -> list[str]:
        """ffmpeg's command line."""
        s = self.spec
        gop = max(1, round(s.segment_s * _FPS))
        return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-re",
                "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={_FPS}", "-map", "0:v",
                "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-x264-params", "nal-hrd=cbr:force-cfr=1",
                "-b:v", str(s.bitrate_bps), "-minrate", str(s.bitrate_bps), "-maxrate", str(s.bitrate_bps),
                "-bufsize", str(s.bitrate_bps // 2), "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                "-pix_fmt", "yuv420p",
                "-f", "dash", "-seg_duration", f"{s.segment_s:g}", "-window_size", str(s.list_size),
                "-use_template", "1", "-use_timeline", "1" if self.timeline else "0", "-streaming", "0",
                "-ldash", "0", "-suggested_presentation_delay", f"{DELAY_SEGMENTS * s.segment_s:g}",
                str(self.root / MPD)]

    def _look(self) -> None:
        """Record each new segment file with its modification time, then the MPD when it is a new version."""
        self._look_segments()
        super()._look()

    def _read(self, text: str) -> dict[str, Any]:
        with self._lock:
            segments = sorted(self.segment_times)
        return {**read_mpd_version(text), "segments": segments}

    def _look_segments(self) -> None:
        try:
            names = [e for e in self.root.iterdir() if _SEGMENT.fullmatch(e.name) and e.name not in self.segment_times]
            found = {e.name: e.stat().st_mtime_ns / 1e9 for e in names}
        except OSError:
            return
        for name, written in sorted(found.items()):
            with self._lock:
                self.segment_times[name] = written
            self._record({"video_id": self.video_id, "segment": name, "written_at": written, "seen_at": time.time()})

