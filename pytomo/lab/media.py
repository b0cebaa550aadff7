"""Synthetic lab videos made once with ffmpeg and cached (or shipped made in the frozen bundle), with their facts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from pytomo import paths
from pytomo.errors import LabError

CONTAINERS = ("mp4", "mp4-moov-end", "fmp4", "webm", "flv")  # with video: what a scenario's videos are made in
AUDIO_ONLY = ("m4a",)  # without video (AAC in MP4, moov first): the audio file of a pair
RECIPE_VERSION = 1  # bump when the ffmpeg recipe changes, so that cached files are made again
MIME_TYPES = {"mp4": "video/mp4", "mp4-moov-end": "video/mp4", "fmp4": "video/mp4", "webm": "video/webm",
              "flv": "video/x-flv", "m4a": "audio/mp4"}
EXTENSIONS = {"mp4": "mp4", "mp4-moov-end": "mp4", "fmp4": "mp4", "webm": "webm", "flv": "flv", "m4a": "m4a"}
PAIR_AUDIO_BPS = 128_000  # the audio part of a pair (as YouTube's format 140)
_MUXERS = {"mp4": "mp4", "mp4-moov-end": "mp4", "fmp4": "mp4", "webm": "webm", "flv": "flv", "m4a": "mp4"}
_MUX_OPTIONS = {
    "mp4": ["-movflags", "+faststart"],
    "m4a": ["-movflags", "+faststart"],
    "mp4-moov-end": [],
    # One fragment per 2 s GOP, runs of at most 10 samples per track inside each mdat, a sidx at the start.
    "fmp4": ["-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx", "-frag_interleave", "10"],
    "webm": [],
    "flv": [],
}
_MUX_OVERHEAD = 0.01  # share of the target bitrate left for container overhead
_NOISE_SEED = 20240601
_FFMPEG_TIMEOUT_S = 600


@dataclass(frozen=True)
class MediaSpec:
    """What lab video to make."""

    container: str  # one of CONTAINERS
    duration_s: float = 30.0
    bitrate_bps: int = 1_000_000  # target total bitrate (video + audio)
    width: int = 640
    height: int = 360
    fps: int = 25
    audio: bool = True  # False: video only (an m4a is always audio only)

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS + AUDIO_ONLY:
            raise LabError(f"unknown lab container {self.container!r} "
                           f"(expected one of {', '.join(CONTAINERS + AUDIO_ONLY)})")
        if not 0 < self.duration_s <= 24 * 3600:
            raise LabError(f"lab media duration {self.duration_s} s is out of range")
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise LabError(f"lab media size {self.width}x{self.height} must be even and at least 16x16")
        if not 1 <= self.fps <= 120:
            raise LabError(f"lab media frame rate {self.fps} is out of range")
        if self.audio_only:
            if not self.audio:
                raise LabError(f"lab {self.container} media is audio only: it cannot be made without audio")
            if not 32_000 <= self.audio_bitrate_bps <= 512_000:
                raise LabError(f"lab audio bitrate {self.bitrate_bps} b/s is out of range (about 32 to 512 kb/s)")
        elif self.video_bitrate_bps < 50_000:
            raise LabError(f"lab media bitrate {self.bitrate_bps} b/s is too low")

    @property
    def audio_only(self) -> bool:
        """True for a container made without video (m4a)."""
        return self.container in AUDIO_ONLY

    @property
    def audio_bitrate_bps(self) -> int:
        """Audio share of the target: an eighth of it, between 32 and 128 kb/s (all of it, less overhead, for m4a)."""
        if self.audio_only:
            return int(self.bitrate_bps * (1 - _MUX_OVERHEAD))
        return min(128_000, max(32_000, self.bitrate_bps // 8)) if self.audio else 0

    @property
    def video_bitrate_bps(self) -> int:
        """Video share of the target, after audio and container overhead (0 for m4a)."""
        if self.audio_only:
            return 0
        return int(self.bitrate_bps * (1 - _MUX_OVERHEAD)) - self.audio_bitrate_bps


@dataclass(frozen=True)
class LabMedia:
    """A generated lab video and the facts ffmpeg reports about it (the ground truth for measurements)."""

    spec: MediaSpec
    path: Path
    size_bytes: int
    duration_s: float  # decoded by ffmpeg: end of the last decoded frame or audio sample
    bitrate_bps: float  # size_bytes * 8 / duration_s, the true encoding rate
    video_codec: str | None  # "h264" or "vp8"; None for audio only (m4a)
    audio_codec: str | None  # "aac" or "opus"; None without audio
    mime_type: str


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped with imageio-ffmpeg, else an ``ffmpeg`` on the PATH; LabError when neither is."""
    try:
        import imageio_ffmpeg
    except ImportError:
        found = shutil.which("ffmpeg")
        if found is None:
            raise LabError("no ffmpeg to make lab media: imageio-ffmpeg is not installed and no ffmpeg is on the PATH"
                           " (install ffmpeg, or the Python package)") from None
        return found
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_unavailable() -> str | None:
    """Why no ffmpeg can make lab media here (the line ``ffmpeg_exe`` would raise), else None."""
    try:
        ffmpeg_exe()
    except LabError as exc:
        return str(exc)
    return None


def _file_name(spec: MediaSpec) -> str:
    return f"{spec.container}-{_spec_key(spec)}.{EXTENSIONS[spec.container]}"


def _bundled(spec: MediaSpec) -> tuple[Path, dict] | None:
    """The file for ``spec`` made at build time and shipped in the frozen bundle, with its facts; None if absent."""
    folder = paths.bundled_media_dir()
    if folder is None:
        return None
    path = folder / _file_name(spec)
    facts = _read_sidecar(path.with_name(path.name + ".json"), path)
    return (path, facts) if facts is not None else None


def media_unavailable(spec: MediaSpec, cache_dir: Path | None = None) -> str | None:
    """Why the lab video for ``spec`` cannot be had here (not made, not shipped, no ffmpeg), else None."""
    folder = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "lab-media"
    path = folder / _file_name(spec)
    if _read_sidecar(path.with_name(path.name + ".json"), path) is not None or _bundled(spec) is not None:
        return None
    return ffmpeg_unavailable()


def ensure_media(spec: MediaSpec, cache_dir: Path | None = None) -> LabMedia:
    """The lab video for ``spec``: made on first use in ``cache_dir`` (default: the user cache), then reused; the
    frozen bundle's own copy when it ships one and none was made."""
    folder = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "lab-media"
    path = folder / _file_name(spec)
    sidecar = path.with_name(path.name + ".json")
    facts = _read_sidecar(sidecar, path)
    shipped = _bundled(spec) if facts is None else None
    if shipped is not None:
        path, facts = shipped
    elif facts is None:
        folder.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            _generate(spec, path)
        facts = _probe(path, audio_only=spec.audio_only)
        _write_atomically(sidecar, json.dumps(facts, sort_keys=True).encode())
    return LabMedia(spec=spec, path=path, size_bytes=facts["size_bytes"], duration_s=facts["duration_s"],
                    bitrate_bps=facts["size_bytes"] * 8 / facts["duration_s"], video_codec=facts["video_codec"],
                    audio_codec=facts["audio_codec"], mime_type=MIME_TYPES[spec.container])


def make_bundle(specs: list[MediaSpec], folder: Path) -> list[LabMedia]:
    """Make each spec's file and its sidecar of facts in ``folder`` (build/pyinstaller.py ships them), once each."""
    made: dict[str, LabMedia] = {}
    for spec in specs:
        name = _file_name(spec)
        if name not in made:
            made[name] = ensure_media(spec, folder)
    return list(made.values())


def pair_specs(spec: MediaSpec) -> dict[str, MediaSpec]:
    """The two files of a video+audio pair made from a progressive MP4 spec, as YouTube's adaptive formats are:
    ``video`` (the same picture at the same total bitrate, no audio) and ``audio`` (AAC in an m4a, 128 kb/s)."""
    if spec.container != "mp4":
        raise LabError(f"a lab video+audio pair is made from an mp4 video, not {spec.container}")
    return {"video": MediaSpec("mp4", duration_s=spec.duration_s, bitrate_bps=spec.bitrate_bps, width=spec.width,
                               height=spec.height, fps=spec.fps, audio=False),
            "audio": MediaSpec("m4a", duration_s=spec.duration_s, bitrate_bps=PAIR_AUDIO_BPS)}


def _spec_key(spec: MediaSpec) -> str:
    text = json.dumps({"recipe": RECIPE_VERSION, **asdict(spec)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_sidecar(sidecar: Path, path: Path) -> dict | None:
    try:
        facts = json.loads(sidecar.read_text())
        if facts["size_bytes"] == path.stat().st_size and facts["duration_s"] > 0:
            return facts
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _command(spec: MediaSpec, output: Path) -> list[str]:
    """The ffmpeg command line: noisy moving test picture, sine tone, near-constant bitrate, bit-exact output."""
    if spec.audio_only:
        return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={spec.duration_s}",
                "-map", "0:a", "-c:a", "aac", "-b:a", str(spec.audio_bitrate_bps), "-threads", "1",
                "-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1", "-map_chapters", "-1",
                *_MUX_OPTIONS[spec.container], "-f", _MUXERS[spec.container], str(output)]
    gop = 2 * spec.fps
    video_bps = spec.video_bitrate_bps
    picture = (f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}:duration={spec.duration_s},"
               f"noise=alls=30:allf=t+u:all_seed={_NOISE_SEED},format=yuv420p")
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-filter_threads", "1",
               "-f", "lavfi", "-i", picture]
    if spec.audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={spec.duration_s}"]
    command += ["-map", "0:v"] + (["-map", "1:a"] if spec.audio else [])
    # Constant bitrate with a small rate buffer (x264: 1/4 s, half full at the start; libvpx: 1/2 s), so that
    # bytes stay within a few percent of linear in media time.
    rate = ["-b:v", str(video_bps), "-minrate", str(video_bps), "-maxrate", str(video_bps),
            "-g", str(gop), "-keyint_min", str(gop)]
    if spec.container == "webm":
        command += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0",
                    "-auto-alt-ref", "0", "-bufsize", str(video_bps // 2), *rate]
        audio = ["-c:a", "libopus", "-b:a", str(spec.audio_bitrate_bps)]
    else:
        command += ["-c:v", "libx264", "-preset", "veryfast", "-x264-params", "nal-hrd=cbr:force-cfr=1:vbv-init=0.5",
                    "-sc_threshold", "0", "-bufsize", str(video_bps // 4), *rate]
        audio = ["-c:a", "aac", "-b:a", str(spec.audio_bitrate_bps)]
    command += ["-threads", "1", "-pix_fmt", "yuv420p"]
    if spec.audio:
        command += audio
    command += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
                "-map_metadata", "-1", "-map_chapters", "-1", *_MUX_OPTIONS[spec.container],
                "-f", _MUXERS[spec.container], str(output)]
    return command


def _run_ffmpeg(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"ffmpeg could not {what}: {exc}") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise LabError(f"ffmpeg could not {what}: {last}")
    return done


def _generate(spec: MediaSpec, path: Path) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        _run_ffmpeg(_command(spec, temp), f"make {spec.container} lab media")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


_STREAM = re.compile(r"Stream #\d+:\d+\S*: (Video|Audio): (\w+)")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def _probe(path: Path, *, audio_only: bool = False) -> dict:
    """Facts from ffmpeg itself: codecs from its stream list, duration from decoding every frame.

    A file must have a video stream, or (``audio_only``) an audio stream and no video."""
    done = _run_ffmpeg([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-i", str(path), "-map", "0",
                        "-progress", "pipe:1", "-f", "null", "-"], f"read {path.name}")
    codecs = {kind: codec for kind, codec in reversed(_STREAM.findall(done.stderr))}
    times = [int(line[len("out_time_us="):]) for line in done.stdout.splitlines()
             if re.fullmatch(r"out_time_us=\d+", line)]
    duration_s = times[-1] / 1e6 if times else 0.0
    if duration_s <= 0:
        match = _DURATION.search(done.stderr)
        if match is None:
            raise LabError(f"ffmpeg reported no duration for {path.name}")
        hours, minutes, seconds = match.groups()
        duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if audio_only and ("Audio" not in codecs or "Video" in codecs):
        raise LabError(f"ffmpeg did not find one audio stream and no video in {path.name}")
    if not audio_only and "Video" not in codecs:
        raise LabError(f"ffmpeg found no video stream in {path.name}")
    return {"size_bytes": path.stat().st_size, "duration_s": duration_s, "video_codec": codecs.get("Video"),
            "audio_codec": codecs.get("Audio")}
