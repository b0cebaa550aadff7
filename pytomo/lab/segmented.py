"""Lab media for segmented streaming: HLS and DASH ladders with separate audio, encoded once by ffmpeg and packaged
by ffmpeg's own muxers or by Shaka Packager."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from pytomo import paths
from pytomo.errors import LabError
from pytomo.lab.media import _NOISE_SEED, _run_ffmpeg, ffmpeg_exe
from pytomo.lab.scenario import PACKAGINGS
from pytomo.lab.tools import packager_exe

PROTOCOLS = ("hls", "dash")
MANIFESTS = {"hls": "master.m3u8", "dash": "manifest.mpd"}
MIME_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml", ".ts": "video/mp2t",
              ".m4s": "video/iso.segment", ".mp4": "video/mp4"}
DEFAULT_LADDER = ((240, 300_000), (360, 800_000), (480, 1_600_000))
_FPS = 25
_VERSION = 1
_PACKAGER_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class SegmentedSpec:
    """A ladder of video renditions (height, video bit/s) plus one audio stream, cut into segments."""

    protocol: str
    duration_s: float = 30.0
    segment_s: float = 2.0
    ladder: tuple[tuple[int, int], ...] = DEFAULT_LADDER
    audio_bitrate_bps: int = 96_000
    packaging: str = "ffmpeg"  # one of PACKAGINGS[protocol]

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise LabError(f"segmented protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if self.packaging not in PACKAGINGS[self.protocol]:
            raise LabError(f"packaging for {self.protocol} must be one of {', '.join(PACKAGINGS[self.protocol])}, "
                           f"not {self.packaging!r}")
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

    fields = asdict(spec)
    if spec.packaging == "ffmpeg":  # the key of ffmpeg's forms is what it was before packagings existed
        del fields["packaging"]
    text = json.dumps({"v": _VERSION, **fields}, sort_keys=True)
    name = spec.protocol if spec.packaging == "ffmpeg" else spec.packaging
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _sources(spec: SegmentedSpec) -> tuple[list[str], int]:
    """ffmpeg's inputs and filter graph for the ladder (outputs [v0], [v1]... and input 1's audio)."""
    top = max(h for h, _ in spec.ladder)
    width = lambda h: (h * 16 // 9) // 2 * 2  # noqa: E731
    picture = (f"testsrc2=size={width(top)}x{top}:rate={_FPS}:duration={spec.duration_s},"
               f"noise=alls=30:allf=t+u:all_seed={_NOISE_SEED},format=yuv420p")
    n = len(spec.ladder)
    split = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + ";" + ";".join(
        f"[s{i}]scale={width(h)}:{h}[v{i}]" for i, (h, _b) in enumerate(spec.ladder))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-filter_threads", "1",
           "-f", "lavfi", "-i", picture,
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={spec.duration_s}",
           "-filter_complex", split]
    return cmd, n


def _video_codec(spec: SegmentedSpec) -> list[str]:
    gop = round(spec.segment_s * _FPS)
    return ["-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-x264-params", "nal-hrd=cbr:force-cfr=1",
            "-sc_threshold", "0", "-g", str(gop), "-keyint_min", str(gop), "-pix_fmt", "yuv420p"]


def _audio_codec(spec: SegmentedSpec) -> list[str]:
    return ["-c:a", "aac", "-b:a", str(spec.audio_bitrate_bps)]


_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


def _rate(bps: int, suffix: str) -> list[str]:
    return [f"-b:v{suffix}", str(bps), f"-minrate:v{suffix}", str(bps), f"-maxrate:v{suffix}", str(bps),
            f"-bufsize:v{suffix}", str(bps // 2)]


def _encode_command(spec: SegmentedSpec, src: Path) -> list[str]:
    """One MP4 per video rendition (v0.mp4, v1.mp4...) and audio.mp4, keyframes every segment_s, for Shaka."""
    cmd, n = _sources(spec)
    for i, (_h, bps) in enumerate(spec.ladder):
        cmd += ["-map", f"[v{i}]", *_video_codec(spec), *_rate(bps, ""), "-an", *_BITEXACT, str(src / f"v{i}.mp4")]
    cmd += ["-map", "1:a", *_audio_codec(spec), "-vn", *_BITEXACT, str(src / "audio.mp4")]
    return cmd


def _packager_command(spec: SegmentedSpec, exe: str, src: Path) -> list[str]:
    """Shaka Packager's stream descriptors and flags for ``spec.packaging``; run in the output folder."""
    names = [f"v{i}" for i in range(len(spec.ladder))] + ["audio"]
    cmd = [exe]
    for name in names:
        kind = "audio" if name == "audio" else "video"
        fields = [f"in={src / (name + '.mp4')}", f"stream={kind}"]
        if spec.packaging in ("shaka-cmaf", "shaka-number", "shaka-time"):
            number = "$Time$" if spec.packaging == "shaka-time" else "$Number$"
            fields += [f"init_segment={name}/init.mp4", f"segment_template={name}/{number}.m4s"]
        else:  # one file per rendition: byte ranges (HLS) or SegmentBase with a sidx (DASH)
            fields += [f"output={name}.mp4"]
        if spec.protocol == "hls":
            fields += [f"playlist_name={name}/index.m3u8" if spec.packaging == "shaka-cmaf" else
                       f"playlist_name={name}.m3u8"]
            if kind == "audio":
                fields += ["hls_group_id=audio", "hls_name=audio"]
        cmd.append(",".join(fields))
    cmd += ["--segment_duration", str(spec.segment_s)]
    if spec.protocol == "hls":
        cmd += ["--hls_master_playlist_output", MANIFESTS["hls"], "--hls_playlist_type", "VOD"]
    else:
        cmd += ["--mpd_output", MANIFESTS["dash"]]
        if spec.packaging != "shaka-segmentbase":
            cmd += ["--generate_static_live_mpd"]
    return cmd


def _run_packager(command: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=_PACKAGER_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"Shaka Packager could not {what}: {exc}") from exc
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise LabError(f"Shaka Packager could not {what}: {last}")


def _renditions(spec: SegmentedSpec, base: Path) -> Path:
    """The encoded renditions for Shaka Packager, made once per ladder and shared by the five Shaka forms."""
    import hashlib

    fields = {k: v for k, v in asdict(spec).items() if k not in ("protocol", "packaging")}
    text = json.dumps({"v": _VERSION, **fields}, sort_keys=True)
    src = base / f"renditions-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not (src / "audio.mp4").exists():
        temp = base / f".{src.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            temp.mkdir()
            _run_ffmpeg(_encode_command(spec, temp), "encode the lab renditions for Shaka Packager")
            try:
                os.replace(temp, src)
            except OSError:  # another process made it first
                pass
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return src


def _package_shaka(spec: SegmentedSpec, exe: str, out: Path) -> None:
    """Package the ladder's renditions into ``out`` with Shaka Packager."""
    src = _renditions(spec, out.parent)
    _run_packager(_packager_command(spec, exe, src), out, f"make {spec.packaging} lab media")


def _command(spec: SegmentedSpec, out: Path) -> list[str]:
    cmd, n = _sources(spec)
    for i in range(n):
        cmd += ["-map", f"[v{i}]"]
    cmd += ["-map", "1:a", *_video_codec(spec)]
    for i, (_h, bps) in enumerate(spec.ladder):
        cmd += _rate(bps, f":{i}")
    cmd += [*_audio_codec(spec), *_BITEXACT]
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


def _cache_root(spec: SegmentedSpec, cache_dir: Path | None) -> Path:
    return (cache_dir or paths.cache_dir() / "lab-media") / _key(spec)


def unavailable(spec: SegmentedSpec, cache_dir: Path | None = None) -> str | None:
    """Why ``spec`` cannot be made here (a Shaka form, not cached, without Shaka Packager), else None."""
    if spec.packaging == "ffmpeg" or (_cache_root(spec, cache_dir) / "files.json").exists():
        return None
    exe, why = packager_exe()
    return None if exe else f"{spec.protocol} {spec.packaging} lab media needs Shaka Packager: {why}"


def segmented_made(spec: SegmentedSpec, cache_dir: Path | None = None) -> bool:
    """True when the presentation for ``spec`` is in the lab media cache already (nothing to make)."""
    return (_cache_root(spec, cache_dir) / "files.json").exists()


def ensure_segmented(spec: SegmentedSpec, cache_dir: Path | None = None) -> SegmentedMedia:
    """The presentation for ``spec``, generated on first use into the lab media cache.

    A Shaka form not in the cache yet needs Shaka Packager: without it, LabError with ``unavailable(spec)``.
    """
    root = _cache_root(spec, cache_dir)
    base = root.parent
    index = root / "files.json"
    if not index.exists():
        exe = None
        if spec.packaging != "ffmpeg":
            exe, why = packager_exe()
            if exe is None:
                raise LabError(f"{spec.protocol} {spec.packaging} lab media needs Shaka Packager: {why}")
        base.mkdir(parents=True, exist_ok=True)
        temp = base / f".{root.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            temp.mkdir()
            if exe is not None:
                _package_shaka(spec, exe, temp)
            else:
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
