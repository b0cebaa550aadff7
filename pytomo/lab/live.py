"""A live HLS channel made by ffmpeg in real time into nginx's document root, and every version of its playlist as
ffmpeg wrote it, with its time (the lab's truth for live streams).

ffmpeg reads a test picture and tone at their own pace (``-re``), encodes them at the video's bitrate and writes a
sliding window of ``LIST_SIZE`` segments (``-hls_list_size``), each playlist and segment written to a temporary
file and renamed (``temp_file``), segments that left the window deleted (``delete_segments``), each segment dated
(``program_date_time``). A watcher thread looks at the playlist every 50 ms and records each new version: the file's
own modification time (when ffmpeg wrote it, before the rename that published it), when it was seen, its media
sequence, its segments, whether it ended, and its text.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytomo.errors import LabError
from pytomo.lab.media import ffmpeg_exe
from pytomo.lab.served import parent_death_signal

log = logging.getLogger(__name__)

PLAYLIST = "live.m3u8"
LIST_SIZE = 5  # segments in ffmpeg's sliding window
AUDIO_BPS = 64_000
SIZE = "426x240"
_FPS = 25
_POLL_S = 0.05
_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class LiveSpec:
    """What the channel sends: segments of ``segment_s`` at ``bitrate_bps`` of video (plus AUDIO_BPS of AAC)."""

    segment_s: float = 2.0
    bitrate_bps: int = 400_000
    list_size: int = LIST_SIZE


def read_version(text: str) -> dict[str, Any]:
    """The media sequence, segment URIs and end of one playlist version (a plain reading of ffmpeg's output)."""
    sequence, uris, ended = 0, [], False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1]) if line.split(":", 1)[1].strip().isdigit() else 0
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line and not line.startswith("#"):
            uris.append(line)
    return {"media_sequence": sequence, "segments": uris, "ended": ended}


class LiveChannel:
    """One live channel: ffmpeg writing into ``root`` (served by nginx as /s/<video id>/), and its watcher."""

    manifest = PLAYLIST  # the file the watcher records each version of

    def __init__(self, video_id: str, spec: LiveSpec, record_path: Path | None = None) -> None:
        self.video_id, self.spec, self.record_path = video_id, spec, record_path
        self.base = Path(tempfile.mkdtemp(prefix=f"pytomo-live-{video_id}-"))
        self.root = self.base / "hls"
        self.root.mkdir()
        for folder in (self.base, self.root):  # nginx's workers may run as another user
            folder.chmod(0o755)
        self.versions: list[dict[str, Any]] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._seen: tuple[int, int, int] | None = None

    def command(self) -> list[str]:
        """ffmpeg's command line."""
        s = self.spec
        gop = max(1, round(s.segment_s * _FPS))
        return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-re",
                "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={_FPS}",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-map", "0:v", "-map", "1:a",
                "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-x264-params", "nal-hrd=cbr:force-cfr=1",
                "-b:v", str(s.bitrate_bps), "-minrate", str(s.bitrate_bps), "-maxrate", str(s.bitrate_bps),
                "-bufsize", str(s.bitrate_bps // 2), "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", str(AUDIO_BPS),
                "-f", "hls", "-hls_time", f"{s.segment_s:g}", "-hls_list_size", str(s.list_size),
                "-hls_flags", "delete_segments+program_date_time+temp_file",
                "-hls_segment_filename", str(self.root / "seg%05d.ts"), str(self.root / PLAYLIST)]

    def start(self) -> LiveChannel:
        """Start ffmpeg and the watcher."""
        try:
            with open(self.base / "ffmpeg.log", "wb") as err:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=err, preexec_fn=parent_death_signal())
        except OSError as exc:
            raise LabError(f"cannot start ffmpeg for the live channel {self.video_id}: {exc}") from exc
        self._watcher = threading.Thread(target=self._watch, name=f"live-{self.video_id}", daemon=True)
        self._watcher.start()
        return self

    def wait_ready(self, segments: int = 1, timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Return once the playlist lists ``segments`` segments; LabError if ffmpeg ends or takes too long."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                latest = self.versions[-1] if self.versions else None
            if latest is not None and len(latest["segments"]) >= segments:
                return
            if self.proc is None or self.proc.poll() is not None:
                raise LabError(f"ffmpeg stopped making the live channel {self.video_id}: {self._last_error()}")
            time.sleep(_POLL_S)
        raise LabError(f"the live channel {self.video_id} listed fewer than {segments} segments in {timeout_s:g} s")

    def _last_error(self) -> str:
        try:
            lines = (self.base / "ffmpeg.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no message"
        return lines[-1] if lines else "no message"

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._look()
            self._stop.wait(_POLL_S)
        self._look()

    def _look(self) -> None:
        """Record the manifest when it is a new version."""
        path = self.root / self.manifest
        try:
            st = path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if key == self._seen:
                return
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        self._seen = key
        self._record({"video_id": self.video_id, "written_at": st.st_mtime_ns / 1e9, "seen_at": time.time(),
                      **self._read(text), "text": text})

    def _read(self, text: str) -> dict[str, Any]:
        """What a manifest version says, for the record."""
        return read_version(text)

    def _record(self, entry: dict[str, Any]) -> None:
        """Keep a manifest version, and write every entry to the record file."""
        if "segment" not in entry:
            with self._lock:
                self.versions.append(entry)
        if self.record_path is not None:
            with open(self.record_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")

    def stop(self) -> None:
        """Stop ffmpeg (it writes a last playlist with EXT-X-ENDLIST), the watcher, and remove the files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(_STOP_TIMEOUT_S)
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        shutil.rmtree(self.base, ignore_errors=True)


def live_file(truth_path: str | os.PathLike[str]) -> Path:
    """Where the lab records the live channels' playlist versions beside a truth log (JSON lines)."""
    truth_path = Path(truth_path)
    return truth_path.with_name(truth_path.name + ".live.jsonl")
