"""Lab media without a bundled ffmpeg: files shipped made in the frozen bundle, an ffmpeg on the PATH, or left out."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import pytest

import pytomo.lab.media as lab_media_module
from pytomo import paths
from pytomo.errors import LabError
from pytomo.lab.media import MediaSpec, ensure_media, ffmpeg_exe, ffmpeg_unavailable, make_bundle, media_unavailable
from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import parse_scenario

SPEC = MediaSpec("flv", duration_s=1.0, bitrate_bps=400_000, width=160, height=90)


def _without_imageio(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the volunteer executable: imageio_ffmpeg cannot be imported."""
    real = builtins.__import__

    def blocked(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == "imageio_ffmpeg":
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "imageio_ffmpeg", raising=False)
    monkeypatch.setattr(builtins, "__import__", blocked)


def _frozen(monkeypatch: pytest.MonkeyPatch, bundle: Path) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)


def test_without_imageio_ffmpeg_the_path_ffmpeg_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ffmpeg_exe()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ffmpeg").symlink_to(real)
    _without_imageio(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert ffmpeg_exe() == str(tmp_path / "bin" / "ffmpeg") and ffmpeg_unavailable() is None
    made = ensure_media(SPEC, tmp_path / "cache")
    assert made.path.read_bytes()[:3] == b"FLV" and made.duration_s == pytest.approx(1.0, rel=0.05)


def test_without_any_ffmpeg_one_line_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_imageio(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path))
    why = ffmpeg_unavailable()
    assert why is not None and "no ffmpeg" in why and "\n" not in why
    assert media_unavailable(SPEC, tmp_path / "cache") == why
    with pytest.raises(LabError, match="no ffmpeg"):
        ensure_media(SPEC, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # nothing half made


def test_the_bundle_ships_made_media_found_without_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "bundle"
    made = make_bundle([SPEC, SPEC], bundle / paths.BUNDLED_MEDIA_DIR)  # once per spec, as the build makes them
    assert len(made) == 1 and sorted(p.name for p in (bundle / paths.BUNDLED_MEDIA_DIR).iterdir()) == sorted(
        [made[0].path.name, made[0].path.name + ".json"])
    _frozen(monkeypatch, bundle)
    _without_imageio(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path))

    def no_ffmpeg(*args: object, **kwargs: object) -> None:
        raise AssertionError("ffmpeg was run")

    monkeypatch.setattr(lab_media_module, "_run_ffmpeg", no_ffmpeg)
    cache = tmp_path / "empty-cache"
    assert paths.bundled_media_dir() == bundle / paths.BUNDLED_MEDIA_DIR
    assert media_unavailable(SPEC, cache) is None
    shipped = ensure_media(SPEC, cache)
    assert shipped == made[0]  # the same file, read from the bundle with its facts
    assert not cache.exists()  # nothing copied
    other = MediaSpec("flv", duration_s=2.0, bitrate_bps=400_000, width=160, height=90)
    assert media_unavailable(other, cache) is not None  # a spec the bundle does not ship needs ffmpeg


def test_outside_a_bundle_there_is_no_bundled_media(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert paths.bundled_media_dir() is None


_SCENARIO = {
    "scenario": {"name": "bundle"},
    "video_defaults": {"duration_s": 1.0, "bitrate_bps": 400_000},
    "servers": [{"name": "a", "ip": "127.77.9.1"}, {"name": "n", "ip": "127.77.9.2", "software": "nginx"}],
    "videos": [{"id": "shipped", "server": "a", "container": "flv"},
               {"id": "not-shipped", "server": "a", "container": "webm"},
               {"id": "ladder", "server": "a", "delivery": "hls", "segment_s": 1.0},
               {"id": "live", "server": "n", "delivery": "hls", "live": True, "segment_s": 2.0}],
}


def test_without_ffmpeg_the_lab_leaves_out_what_it_cannot_make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    scenario = parse_scenario(_SCENARIO)
    shipped_spec = next(v.media for v in scenario.videos if v.id == "shipped")
    bundle = tmp_path / "bundle"
    make_bundle([shipped_spec], bundle / paths.BUNDLED_MEDIA_DIR)
    _frozen(monkeypatch, bundle)
    _without_imageio(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path))
    lab = Lab(scenario, media_dir=tmp_path / "cache")
    with caplog.at_level("WARNING", logger="pytomo"):
        lab._make_media()
    assert [v.id for v in lab.scenario.videos] == ["shipped"]
    assert lab.media["shipped"].path.parent == bundle / paths.BUNDLED_MEDIA_DIR
    lines = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(lines) == 1 and "ladder, live, not-shipped" in lines[0] and "no ffmpeg" in lines[0], lines
