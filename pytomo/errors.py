"""The one exception tree of Pytomo; only the CLI turns these into exit codes."""

from __future__ import annotations


class PytomoError(Exception):
    """Root of every error Pytomo raises on purpose.

    Subclasses take keyword fields that handlers can read (``err.fields``); the message is built from
    ``fmt`` and those fields unless one is given explicitly.
    """

    fmt = "{message}"

    def __init__(self, message: str | None = None, **fields: object) -> None:
        self.fields = fields
        if message is None:
            try:
                message = self.fmt.format(**fields)
            except (KeyError, IndexError):
                message = self.__class__.__doc__ or self.__class__.__name__
        super().__init__(message)


class UsageError(PytomoError):
    """A wrong option, file or URL given by the user (exit status 2)."""


class NotConfigured(PytomoError):
    """A component cannot run here (missing permission or library); the pipeline goes on without it."""


class StorageError(PytomoError):
    """The run database cannot be created or written."""


class LabError(PytomoError):
    """The built-in lab cannot start or its scenario is invalid."""


class MeasurementError(PytomoError):
    """A video could not be measured at one stage; stored as that video's outcome.

    ``stage`` names the pipeline stage (resolve_page, redirects, dns, rtt, download, media, playout) and
    ``kind`` a short machine-readable reason (http_status, hop_limit, reset, short_body, not_media, ...).
    """

    stage = "unknown"
    kind = "error"

    def __init__(self, message: str | None = None, *, stage: str | None = None, kind: str | None = None,
                 **fields: object) -> None:
        super().__init__(message, **fields)
        if stage is not None:
            self.stage = stage
        if kind is not None:
            self.kind = kind


class UnsupportedURL(MeasurementError):
    """No service plugin accepts this URL."""

    stage = "resolve_page"
    kind = "unsupported_url"
    fmt = "no service accepts the URL {url!r}"


class PageError(MeasurementError):
    """The watch page could not be fetched or did not describe a video."""

    stage = "resolve_page"
    kind = "page"


class RedirectError(MeasurementError):
    """The redirect chain to the cache server could not be followed."""

    stage = "redirects"
    kind = "redirect"


class ForbiddenAddress(RedirectError):
    """A redirect, a page, a manifest or a DNS answer pointed at a non-global address the user did not give."""

    kind = "forbidden_address"


class HttpStatusError(MeasurementError):
    """A server answered with an HTTP error status."""

    kind = "http_status"
    fmt = "HTTP {status} from {url}"


class ResolveFailed(MeasurementError):
    """No resolver gave an address for a host."""

    stage = "dns"
    kind = "no_address"
    fmt = "no address for {host!r}"


class DownloadError(MeasurementError):
    """The media transfer failed (connection refused or reset, short body, timeout)."""

    stage = "download"
    kind = "transfer"


class MediaError(MeasurementError):
    """The downloaded bytes are not a media file that can be parsed."""

    stage = "media"
    kind = "not_media"


class ParserFailure(MediaError):
    """MediaInfo crashed (``parser_crash``), ran out of time (``parser_timeout``) or memory (``parser_memory``)."""

    kind = "parser_crash"


class ManifestError(MediaError):
    """An HLS playlist or DASH MPD that cannot be read: a malformed value (named in the message) or too large."""

    kind = "bad_manifest"


BLOCKED_STATUSES = (401, 403, 429)  # a platform's media host refusing the client, not a broken server


class BlockedClient(HttpStatusError):
    """A platform's media host (CDN) refused the manifest or a segment (HTTP 401, 403 or 429): stored with the status.

    Raise it with the stage (``download``) and the fields ``status`` and ``url`` where a platform's media request
    gets one of ``BLOCKED_STATUSES``, instead of the generic HttpStatusError.
    """

    kind = "blocked_client"
    fmt = "the media host refused the client: HTTP {status} from {url}"
