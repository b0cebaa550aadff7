"""Lab media for segmented streaming: HLS and DASH ladders with separate audio, generated once by ffmpeg."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from pytomo import paths
from pytomo.errors import LabError
from pytomo.lab.media import _NOISE_SEED, _run_ffmpeg, ffmpeg_exe

PROTOCOLS = ("hls", "dash")
MANIFESTS = {"hls": "master.m3u8", "dash": "manifest.mpd"}
MIME_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml", ".ts": "video/mp2t",
              ".m4s": "video/iso.segment", ".mp4": "video/mp4"}
DEFAULT_LADDER = ((240, 300_000), (360, 800_000), (480, 1_600_000))
_FPS = 25
_VERSION = 1


@dataclass(frozen=True)
class SegmentedSpec:
    """A ladder of video renditions (height, video bit/s) plus one audio stream, cut into segments."""

    protocol: str
    duration_s: float = 30.0
    segment_s: float = 2.0
    ladder: tuple[tuple[int, int], ...] = DEFAULT_LADDER
    audio_bitrate_bps: int = 96_000

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise LabError(f"segmented protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if not 0.5 <= self.segment_s <= self.duration_s:
            raise LabError("segment_s must be at least 0.5 s and at most the duration")
        if not self.ladder:
            raise LabError("a segmented video needs at least one rendition")


@dataclass(frozen=True)
class SegmentedMedia:
    """A generated presentation: its folder, the manifest's name, and the size of every file."""

    spec: SegmentedSpec
    root: Path
    manifest: str
    sizes: dict[str, int]

    def path(self, relative: str) -> Path | None:
        """The file for a relative URL path, or None when it is not part of the presentation."""
        return self.root / relative if relative in self.sizes else None


def _key(spec: SegmentedSpec) -> str:
    import hashlib

    text = json.dumps({"v": _VERSION, **asdict(spec)}, sort_keys=True)
    return f"{spec.protocol}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _command(spec: SegmentedSpec, out: Path) -> list[str]:
    top = max(h for h, _ in spec.ladder)
    width = lambda h: (h * 16 // 9) // 2 * 2  # noqa: E731
    picture = (f"testsrc2=size={width(top)}x{top}:rate={_FPS}:duration={spec.duration_s},"
               f"noise=alls=30:allf=t+u:all_seed={_NOISE_SEED},format=yuv420p")
    n = len(spec.ladder)
    split = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + ";" + ";".join(
        f"[s{i}]scale={width(h)}:{h}[v{i}]" for i, (h, _b) in enumerate(spec.ladder))
    gop = round(spec.segment_s * _FPS)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-filter_threads", "1",
           "-f", "lavfi", "-i", picture,
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={spec.duration_s}",
           "-filter_complex", split]
    for i in range(n):
        cmd += ["-map", f"[v{i}]"]
    cmd += ["-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-threads", "1",
            "-x264-params", "nal-hrd=cbr:force-cfr=1", "-sc_threshold", "0", "-g", str(gop),
            "-keyint_min", str(gop), "-pix_fmt", "yuv420p"]
    for i, (_h, bps) in enumerate(spec.ladder):
        cmd += [f"-b:v:{i}", str(bps), f"-minrate:v:{i}", str(bps), f"-maxrate:v:{i}", str(bps),
                f"-bufsize:v:{i}", str(bps // 2)]
    cmd += ["-c:a", "aac", "-b:a", str(spec.audio_bitrate_bps), "-fflags", "+bitexact", "-flags:v", "+bitexact",
            "-flags:a", "+bitexact", "-map_metadata", "-1"]
    if spec.protocol == "dash":
        cmd += ["-f", "dash", "-seg_duration", str(spec.segment_s), "-use_template", "1", "-use_timeline", "0",
                "-adaptation_sets", "id=0,streams=v id=1,streams=a",
                "-init_seg_name", "init-$RepresentationID$.m4s",
                "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s", str(out / MANIFESTS["dash"])]
    else:
        streams = " ".join(f"v:{i},agroup:aud,name:v{i}" for i in range(n)) + " a:0,agroup:aud,name:audio,default:yes"
        cmd += ["-f", "hls", "-hls_time", str(spec.segment_s), "-hls_playlist_type", "vod",
                "-hls_segment_type", "mpegts", "-master_pl_name", MANIFESTS["hls"], "-var_stream_map", streams,
                "-hls_segment_filename", str(out / "%v" / "seg_%05d.ts"), str(out / "%v" / "index.m3u8")]
    return cmd


def ensure_segmented(spec: SegmentedSpec, cache_dir: Path | None = None) -> SegmentedMedia:
    """The presentation for ``spec``, generated on first use into the lab media cache."""
    base = (cache_dir or paths.cache_dir() / "lab-media")
    root = base / _key(spec)
    index = root / "files.json"
    if not index.exists():
        base.mkdir(parents=True, exist_ok=True)
        temp = base / f".{root.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            temp.mkdir()
            if spec.protocol == "hls":
                for i in range(len(spec.ladder)):
                    (temp / f"v{i}").mkdir()
                (temp / "audio").mkdir()
            _run_ffmpeg(_command(spec, temp), f"make {spec.protocol} lab media")
            sizes = {p.relative_to(temp).as_posix(): p.stat().st_size for p in sorted(temp.rglob("*")) if p.is_file()}
            (temp / "files.json").write_text(json.dumps(sizes, sort_keys=True))
            try:
                os.replace(temp, root)
            except OSError:  # another process made it first
                shutil.rmtree(temp, ignore_errors=True)
        finally:
            if temp.exists():
                shutil.rmtree(temp, ignore_errors=True)
    sizes = json.loads(index.read_text())
    if MANIFESTS[spec.protocol] not in sizes:
        raise LabError(f"lab media {root} has no {MANIFESTS[spec.protocol]}")
    return SegmentedMedia(spec=spec, root=root, manifest=MANIFESTS[spec.protocol], sizes=sizes)
