"""The seeds of a crawl: URLs given on the command line or in a file, else the service's popular list."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pytomo.errors import UsageError
from pytomo.services.base import Service
from pytomo.settings import Settings


def check_url(url: str, where: str) -> str:
    """``url`` if it is an http(s) URL with a host; UsageError naming ``where`` otherwise."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        ok = False
    if not ok or any(c.isspace() for c in url):
        raise UsageError(f"{where}: not an http(s) URL: {url!r}")
    return url


def read_url_file(path: str) -> list[str]:
    """URLs from a file, one per line; blank lines and lines starting with # are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read the input file {path}: {reason}") from exc
    urls = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(check_url(line, f"{path} line {n}"))
    return urls


def seeds_for(settings: Settings, service: Service) -> list[tuple[str, str]]:
    """``(page_url, seed_source)`` pairs, duplicates removed, in order."""
    urls = list(settings.urls)
    if settings.input_file:
        urls += read_url_file(settings.input_file)
    if urls:
        return [(u, "input") for u in dict.fromkeys(urls)]
    found = service.seeds(settings.time_frame, settings.max_per_page)
    if not found:
        raise UsageError(f"the {service.NAME} service gave no popular videos for {settings.time_frame}")
    source = service.seed_source or f"popular:{settings.time_frame}"
    return [(u, source) for u in dict.fromkeys(found)]
