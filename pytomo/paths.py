"""Where Pytomo's data files live, in the source tree and in a frozen PyInstaller binary."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def package_root() -> Path:
    """The folder holding the ``pytomo`` package (inside ``sys._MEIPASS`` when frozen)."""
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        return Path(sys._MEIPASS) / "pytomo"
    return Path(__file__).resolve().parent


def project_root() -> Path:
    """The folder holding ``templates/`` (the source checkout, or the frozen bundle)."""
    return package_root().parent


def templates_dir() -> Path:
    """The web templates."""
    return project_root() / "templates"


def lab_scenarios_dir() -> Path:
    """The scenarios shipped with the lab."""
    return package_root() / "lab" / "scenarios"


BUNDLED_MEDIA_DIR = "lab_media"  # where build/pyinstaller.py puts the lab media it made, inside the bundle


def bundled_media_dir() -> Path | None:
    """The lab media made at build time and shipped in the frozen bundle; None outside a bundle."""
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        folder = Path(sys._MEIPASS) / BUNDLED_MEDIA_DIR
        return folder if folder.is_dir() else None
    return None


def cache_dir() -> Path:
    """Per-user cache for generated lab media (``$PYTOMO_CACHE_DIR`` or ``$XDG_CACHE_HOME/pytomo``)."""
    explicit = os.environ.get("PYTOMO_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytomo"


def config_dir() -> Path:
    """Per-user settings folder: ``$PYTOMO_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/pytomo`` or ``~/.config/pytomo``."""
    explicit = os.environ.get("PYTOMO_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pytomo"


def child_command(name: str) -> list[str]:
    """The command that runs one of Pytomo's own child processes (``_delayline``, ``_mediainfo``), source or frozen."""
    modules = {"_delayline": "pytomo.lab.delayline", "_mediainfo": "pytomo.media.sandbox"}
    if getattr(sys, "frozen", False):
        return [sys.executable, name]
    return [sys.executable, "-m", modules[name]]


LEFT_OUT = ("duckdb", "pyarrow", "adbc_driver_manager", "adbc_driver_sqlite", "numpy", "matplotlib", "PIL", "pandas",
            "dask", "playwright", "imageio_ffmpeg")
"""The libraries build/pyinstaller.py leaves out of the volunteer executable: the researchers' tools (export, analyse,
the collector's dataset) need them, the lab's media are made at build time, its reference players are a harness."""

BUNDLED_DENO_DIR = "deno_bin"  # where build/pyinstaller.py puts the deno binary inside the frozen bundle


def deno_binary() -> Path | None:
    """The deno binary yt-dlp runs its challenge scripts with: the bundled one when frozen, else the ``deno`` wheel's.

    None when neither is there (yt-dlp then looks for ``deno`` on the PATH by itself).
    """
    name = "deno.exe" if sys.platform == "win32" else "deno"
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        path = Path(sys._MEIPASS) / BUNDLED_DENO_DIR / name
        if path.is_file() and not os.access(path, os.X_OK):
            path.chmod(0o700)  # our own extraction folder: make the binary runnable
        return path if path.is_file() else None
    try:
        from deno import find_deno_bin
    except ImportError:
        return None
    try:
        return Path(find_deno_bin())
    except (FileNotFoundError, OSError):
        return None
