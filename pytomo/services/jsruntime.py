"""What yt-dlp itself detects of its JavaScript runtime and EJS scripts, asked as ``yt-dlp -v`` shows it; its age."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pytomo.paths import deno_binary
from pytomo.version import __version__

log = logging.getLogger(__name__)

STALE_AFTER_DAYS = 60
_RUNTIMES_LINE = re.compile(r"^\[debug\] JS runtimes: (.*)$")
_LIBRARIES_LINE = re.compile(r"^\[debug\] Optional libraries: (.*)$")
_EJS = re.compile(r"(?:^|, )yt_dlp_ejs-([^,\s]+)")


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
        from yt_dlp.version import __version__
    except ImportError:
        return JsEnvironment(None, None, None, None, None, "yt-dlp is not installed", "yt-dlp is not installed")
    runtimes = js_runtimes_param() if js_runtimes is None else js_runtimes
    logger = _Lines()
    params = {"logger": logger, "verbose": True, "quiet": True, "js_runtimes": runtimes, "remote_components": []}
    try:
        with yt_dlp.YoutubeDL(params):
            pass
    except Exception as exc:  # yt-dlp refused its parameters: say so rather than fail --version
        why = f"yt-dlp could not start: {exc}"
        return JsEnvironment(__version__, None, None, None, None, why, why)
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
        ejs_problem = f"yt-dlp {__version__} expects yt-dlp-ejs {expected}"
    return JsEnvironment(__version__, runtime, path, ejs, expected, runtime_problem, ejs_problem)


def release_date(version: str | None) -> date | None:
    """The release date in a yt-dlp version (``YYYY.MM.DD`` or ``YYYY.MM.DD.HHMMSS``), None when absent."""
    m = re.match(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})", version or "")
    if not m:
        return None
    try:
        return date(*map(int, m.groups()))
    except ValueError:
        return None


def age_days(version: str | None, today: date | None = None) -> int | None:
    """Days since that release (None when the version carries no date)."""
    released = release_date(version)
    return None if released is None else ((today or date.today()) - released).days


def warn_if_stale(version: str | None, today: date | None = None) -> int | None:
    """One warning line when yt-dlp is older than ``STALE_AFTER_DAYS``; returns its age in days."""
    age = age_days(version, today)
    if age is not None and age > STALE_AFTER_DAYS:
        log.warning("yt-dlp %s is %d days old (over %d): platforms change often, update it (pip install -U yt-dlp "
                    "yt-dlp-ejs) or the measurements may miss formats or fail", version, age, STALE_AFTER_DAYS)
    return age


def version_lines() -> list[str]:
    """``--version``: Pytomo's version, yt-dlp's, and the JS runtime and yt-dlp-ejs that yt-dlp detects now."""
    return [f"pytomo {__version__}", *detect().lines()]
