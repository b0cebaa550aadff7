"""Single source of the software version, the commit it was built from, and what yt-dlp runs with (``--version``)."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytomo.paths import deno_binary

__version__ = "4.0.0.dev0"

COMMIT_FILE = "_commit.txt"  # written into the frozen bundle by build/pyinstaller.py, beside this package
_COMMIT = re.compile(r"[0-9a-f]{7,40}(-dirty)?")
_RUNTIMES_LINE = re.compile(r"^\[debug\] JS runtimes: (.*)$")
_LIBRARIES_LINE = re.compile(r"^\[debug\] Optional libraries: (.*)$")
_EJS = re.compile(r"(?:^|, )yt_dlp_ejs-([^,\s]+)")


def _bundle_commit() -> str | None:
    """The commit a frozen executable was built from: ``_commit.txt`` in the bundle (or beside the package)."""
    places = [Path(getattr(sys, "_MEIPASS", "")) / COMMIT_FILE] if getattr(sys, "frozen", False) else []
    places.append(Path(__file__).resolve().parent / COMMIT_FILE)
    for place in places:
        try:
            text = place.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if _COMMIT.fullmatch(text):
            return text
    return None


def _git_commit() -> str | None:
    """``git rev-parse --short HEAD`` of the checkout this package is in, ``-dirty`` when files are changed."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not _COMMIT.fullmatch(head):
        return None
    return head + ("-dirty" if dirty else "")


@functools.cache
def commit() -> str | None:
    """The commit of this software: the bundle's ``_commit.txt``, else git's HEAD; None when neither is there."""
    return _bundle_commit() or _git_commit()


def full_version() -> str:
    """``4.0.0.dev0+g1a2b3c4`` (PEP 440 local version with the commit), or the version alone."""
    c = commit()
    return f"{__version__}+g{c.replace('-', '.')}" if c else __version__


def js_runtimes_param() -> dict[str, dict[str, str]]:
    """yt-dlp's ``js_runtimes`` option: deno at the path of the bundled or installed binary (else on the PATH)."""
    path = deno_binary()
    return {"deno": {"path": str(path)} if path else {}}


@dataclass(frozen=True)
class JsEnvironment:
    """yt-dlp's version, the JS runtime and yt-dlp-ejs versions it detects, and why a part is missing."""

    ytdlp: str | None
    runtime: str | None  # e.g. "deno 2.9.8", as yt-dlp detects it; None: no usable runtime
    runtime_path: str | None
    ejs: str | None  # the yt-dlp-ejs version yt-dlp detects; None: not installed
    ejs_expected: str | None  # the EJS script version this yt-dlp release checks for
    runtime_problem: str | None = None  # why there is no usable runtime
    ejs_problem: str | None = None  # why there are no usable EJS scripts

    @property
    def ready(self) -> bool:
        """True when yt-dlp has a runtime and matching EJS scripts, i.e. can solve YouTube's JS challenges."""
        return bool(self.runtime and self.ejs) and not (self.runtime_problem or self.ejs_problem)

    def record(self) -> dict[str, Any]:
        """The fields stored per video in ``videos.extractor_json``."""
        problems = [p for p in (self.runtime_problem, self.ejs_problem) if p]
        return {"js_runtime": self.runtime, "js_runtime_path": self.runtime_path, "ejs_version": self.ejs,
                **({"js_runtime_problem": "; ".join(problems)} if problems else {})}

    def lines(self) -> list[str]:
        """What ``--version`` prints after Pytomo's own version."""
        runtime = self.runtime or "none"
        runtime += f" at {self.runtime_path}" if self.runtime else ""
        runtime += f" ({self.runtime_problem})" if self.runtime_problem else ""
        ejs = (self.ejs or "none") + (f" ({self.ejs_problem})" if self.ejs_problem else "")
        return [f"yt-dlp {self.ytdlp or 'none'}" + ("" if self.ytdlp else f" ({self.runtime_problem})"),
                f"JS runtime (as yt-dlp detects it): {runtime}", f"yt-dlp-ejs (as yt-dlp detects it): {ejs}"]


class _Lines:
    """A yt-dlp ``logger`` that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        self.lines.extend(str(msg).splitlines())

    info = warning = error = debug


def _ejs_expected() -> str | None:
    try:  # the version the EJS provider of this yt-dlp release accepts (major.minor must match)
        from yt_dlp.extractor.youtube.jsc._builtin.vendor import VERSION
    except ImportError:
        return None
    return str(VERSION)


def _same_minor(a: str, b: str) -> bool:
    return a.split(".")[:2] == b.split(".")[:2]


def detect(js_runtimes: dict | None = None) -> JsEnvironment:
    """Ask yt-dlp, now, what it finds: its verbose header's ``JS runtimes`` and ``Optional libraries`` lines."""
    try:
        import yt_dlp
        from yt_dlp.version import __version__ as ytdlp_version
    except ImportError:
        return JsEnvironment(None, None, None, None, None, "yt-dlp is not installed", "yt-dlp is not installed")
    runtimes = js_runtimes_param() if js_runtimes is None else js_runtimes
    logger = _Lines()
    params = {"logger": logger, "verbose": True, "quiet": True, "js_runtimes": runtimes, "remote_components": []}
    try:  # its verbose header alone, without loading its extractors
        with yt_dlp.YoutubeDL(params, auto_init=False) as ydl:
            ydl.print_debug_header()
    except Exception as exc:  # yt-dlp refused its parameters: say so rather than fail --version
        why = f"yt-dlp could not start: {exc}"
        return JsEnvironment(ytdlp_version, None, None, None, None, why, why)
    found = next((m.group(1) for m in map(_RUNTIMES_LINE.match, logger.lines) if m), None)
    libraries = next((m.group(1) for m in map(_LIBRARIES_LINE.match, logger.lines) if m), "")
    runtime = path = runtime_problem = ejs_problem = None
    usable = [r for r in (found or "").split(", ") if r and not r.startswith("none")]
    if found is None:
        runtime_problem = "yt-dlp printed no JS runtimes line"
    elif found.startswith("none (disabled)"):
        runtime_problem = "JS runtimes are disabled"
    elif not usable:
        where = (runtimes.get("deno") or {}).get("path") or "the PATH"
        runtime_problem = f"yt-dlp found no runnable deno at {where}"
    else:
        name, _, version = usable[0].partition("-")
        if "(unsupported)" in version:
            runtime_problem = f"yt-dlp says {name} {version.split()[0]} is too old"
        runtime = f"{name} {version.split()[0]}".strip()
        path = (runtimes.get(name) or {}).get("path") or name
    m = _EJS.search(libraries)
    ejs = m.group(1) if m else None
    expected = _ejs_expected()
    if ejs is None:
        ejs_problem = "the yt-dlp-ejs package is not installed, and remote components are off"
    elif expected and not _same_minor(ejs, expected):
        ejs_problem = f"yt-dlp {ytdlp_version} expects yt-dlp-ejs {expected}"
    return JsEnvironment(ytdlp_version, runtime, path, ejs, expected, runtime_problem, ejs_problem)


def version_lines() -> list[str]:
    """``--version``: Pytomo's version, yt-dlp's, and the JS runtime and yt-dlp-ejs that yt-dlp detects now."""
    return [f"pytomo {__version__}", *detect().lines()]
