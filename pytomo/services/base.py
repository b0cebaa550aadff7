"""The service plugin contract: a page URL becomes a media descriptor; a time frame becomes seed URLs."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pytomo.engine.http import NETWORK_ERRORS, tls_failure
from pytomo.errors import MeasurementError, PageError, UsageError
from pytomo.results import MediaDescriptor

if TYPE_CHECKING:
    from pytomo.engine.http import HttpClient
    from pytomo.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    """What a plugin may use: the pinned HTTP client and the run's settings (with the lab's URLs when it runs)."""

    http: HttpClient
    settings: Settings


class Service:
    """Base class of every service plugin. Subclasses declare class data and override ``_resolve``/``_seeds``.

    Class data:
      NAME          the ``-s`` name (lower case, unique).
      LABEL         the value of the 2015 ``Service`` column (e.g. ``YouTube``).
      URL_PATTERNS  regexes; a page URL belongs to the service when one matches; a named group ``id`` gives the
                    video id.
      TESTS         ``(url, expected_id)`` pairs checked offline by the test suite.
      SETTINGS      the plugin's own section of the settings (pytomo/settings.py ``PLUGIN_SECTIONS``), or None: its
                    rows are in the one settings table, its values are the run's ``settings.<NAME>_<key>``, and the
                    config file sets them in the table ``[<NAME>]`` (``<key> = ...``).

    ``resolve(page_url)`` returns a MediaDescriptor with: the page URL as given, the video id, the title as the
    platform shows it (untrusted text: never written into a page unescaped), at least one MediaStream (the media
    URL, which may redirect to the cache server, and what is known of it), the duration when the platform says
    it, and the related page URLs (absolute). It raises a MeasurementError subclass (PageError by default) when the
    page cannot be turned into media; a network exception (``NETWORK_ERRORS``) is wrapped into PageError with its
    text; anything else is a bug and reaches the pipeline's bug handler (logged with its traceback, stored as
    ``internal/bug``).

    ``seeds(time_frame, max_results)`` returns up to ``max_results`` page URLs of the popular list for
    ``today``, ``week``, ``month`` or ``all_time``; a service without one raises UsageError. A plugin whose list
    does not come from a plain popular list sets ``seed_source`` (e.g. ``youtube-api:chart=mostPopular``), which is
    stored per video instead of ``popular:<time frame>``.

    A descriptor's ``extra["extractor"]`` (a JSON-ready dict: resolver, its version, client, format, warnings) is
    stored per video in ``videos.extractor_json``; a MeasurementError may carry the same as its ``extractor`` field.

    Plugins do all network access through ``ctx.http`` so that the crawler controls addresses and proxies.
    """

    NAME: ClassVar[str] = ""
    LABEL: ClassVar[str] = ""
    URL_PATTERNS: ClassVar[tuple[str, ...]] = ()
    TESTS: ClassVar[tuple[tuple[str, str], ...]] = ()
    SETTINGS: ClassVar[type | None] = None

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.seed_source: str | None = None  # set by ``_seeds`` when the list is not a plain popular list

    @classmethod
    def match(cls, url: str) -> re.Match | None:
        """The first URL pattern matching ``url``, or None."""
        for pattern in cls.URL_PATTERNS:
            m = re.match(pattern, url)
            if m:
                return m
        return None

    @classmethod
    def suitable(cls, url: str) -> bool:
        """True when this service handles ``url``."""
        return cls.match(url) is not None

    @classmethod
    def video_id(cls, url: str) -> str | None:
        """The video id in ``url``, when the pattern has an ``id`` group."""
        m = cls.match(url)
        return m.groupdict().get("id") if m else None

    def resolve(self, page_url: str) -> MediaDescriptor:
        """Turn a page URL into a media descriptor (template method around ``_resolve``)."""
        try:
            descriptor = self._resolve(page_url)
        except MeasurementError:
            raise
        except NETWORK_ERRORS as exc:  # the platform could not be reached: stored as this video's outcome
            log.debug("resolve %s failed", page_url, exc_info=True)
            tls = tls_failure(exc)
            if tls is not None:
                raise PageError(f"{self.NAME}: cannot read the page: {tls[1]}", kind=tls[0]) from exc
            raise PageError(f"{self.NAME}: cannot read the page: {exc.__class__.__name__}: {exc}") from exc
        if not descriptor.streams:
            raise PageError(f"{self.NAME}: the page has no media URL")
        return descriptor

    def seeds(self, time_frame: str, max_results: int) -> list[str]:
        """Popular page URLs for a time frame (template method around ``_seeds``)."""
        return list(self._seeds(time_frame, max_results))[:max_results]

    def _resolve(self, page_url: str) -> MediaDescriptor:
        raise NotImplementedError

    def _seeds(self, time_frame: str, max_results: int) -> list[str]:
        raise UsageError(f"service {self.NAME!r} has no popular list: give URLs as arguments or with -f FILE")
