#!/usr/bin/env python3
"""Build the one-file executable ``dist/pytomo-<os>-<arch>`` with PyInstaller (crawler, server, lab, plugins).

Usage: ``.venv/bin/python build/pyinstaller.py`` (after ``./quickstart.sh``). PyInstaller's work files go to
``.pyinstaller/`` (ignored by git), never into ``build/``.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}


def binary_name() -> str:
    """``pytomo-<os>-<arch>``, e.g. pytomo-linux-x86_64."""
    machine = platform.machine().lower()
    return f"pytomo-{platform.system().lower()}-{ARCH.get(machine, machine)}"


def deno_options(sep: str) -> list[str]:
    """The deno binary of the ``deno`` wheel, as a binary of the bundle (``pytomo.paths.deno_binary`` finds it)."""
    sys.path.insert(0, str(ROOT))
    try:
        from pytomo.paths import BUNDLED_DENO_DIR, deno_binary
    finally:
        sys.path.pop(0)
    deno = deno_binary()
    if deno is None:
        raise SystemExit("build/pyinstaller.py: the deno wheel is not installed (pip install deno)")
    return ["--add-binary", f"{deno}{sep}{BUNDLED_DENO_DIR}"]


def commit_file() -> Path:
    """Write ``pytomo/_commit.txt`` (the checkout's commit) for the bundle: ``pytomo.version.commit()`` reads it."""
    sys.path.insert(0, str(ROOT))
    try:
        from pytomo.version import COMMIT_FILE, commit
    finally:
        sys.path.pop(0)
    path = ROOT / ".pyinstaller" / COMMIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((commit() or "unknown") + "\n", encoding="ascii")
    return path


def options() -> list[str]:
    """PyInstaller's command line: one file, our data, the packages that carry binaries or data of their own."""
    sep = ";" if sys.platform == "win32" else ":"
    work = ROOT / ".pyinstaller"
    return [
        str(ROOT / "pytomo" / "__main__.py"),
        "--name", binary_name(), "--onefile", "--console", "--noconfirm", "--clean",
        "--distpath", str(ROOT / "dist"), "--workpath", str(work / "work"), "--specpath", str(work),
        "--paths", str(ROOT),
        "--add-data", f"{ROOT / 'templates'}{sep}templates",
        "--add-data", f"{commit_file()}{sep}pytomo",  # the commit, as pytomo/_commit.txt in the bundle
        "--add-data", f"{ROOT / 'pytomo' / 'lab' / 'scenarios'}{sep}pytomo/lab/scenarios",
        "--add-data", f"{ROOT / 'pytomo' / 'lab' / 'recordings'}{sep}pytomo/lab/recordings",
        # every module of ours, found statically; binaries and data of the libraries that need them
        "--collect-submodules", "pytomo",
        "--collect-binaries", "imageio_ffmpeg", "--collect-data", "imageio_ffmpeg",
        "--collect-binaries", "pymediainfo",
        "--collect-submodules", "dns",
        "--collect-submodules", "yt_dlp", "--collect-data", "yt_dlp",  # with its vendored challenge scripts
        # the EJS challenge solver scripts yt-dlp loads from the yt-dlp-ejs package, and deno to run them
        "--collect-submodules", "yt_dlp_ejs", "--collect-data", "yt_dlp_ejs",
        *deno_options(sep),
        "--exclude-module", "tests", "--exclude-module", "pytest", "--exclude-module", "tkinter",
        # the lab's reference players (pytomo/lab/reference.py) are a test harness: neither playwright nor the npm
        # packages of pytomo/lab/players (never added as data) go into the volunteer executable
        "--exclude-module", "playwright",
    ]


def main() -> int:
    """Run PyInstaller and print the executable's path."""
    import PyInstaller.__main__

    opts = options()
    if not (ROOT / "pytomo" / "lab" / "recordings").is_dir():  # the platform recordings, once there are any
        i = opts.index(f"{ROOT / 'pytomo' / 'lab' / 'recordings'}{';' if sys.platform == 'win32' else ':'}"
                       "pytomo/lab/recordings")
        del opts[i - 1:i + 1]
    PyInstaller.__main__.run(opts)
    exe = ROOT / "dist" / (binary_name() + (".exe" if sys.platform == "win32" else ""))
    print(exe)
    return 0 if exe.exists() else 1


if __name__ == "__main__":
    sys.exit(main())
