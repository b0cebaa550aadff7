"""JSON GET requests to a platform's public API through the crawler's HTTP client, with secrets kept out of errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests.utils

from pytomo.engine.http import NETWORK_ERRORS
from pytomo.engine.pages import get_page, through_transport
from pytomo.errors import MeasurementError

if TYPE_CHECKING:
    from pytomo.engine.http import HttpClient

_LIMIT_BYTES = 4 * 1024 * 1024


class ApiError(Exception):
    """An API call failed: ``status`` (None: no answer), ``reason`` (the API's own code, e.g. ``quotaExceeded``)."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class QuotaExceeded(ApiError):
    """The API's daily quota is spent (YouTube Data API: HTTP 403, reason ``quotaExceeded``)."""


QUOTA_REASONS = ("quotaExceeded", "dailyLimitExceeded")  # the Data API's documented quota error reasons


def _error_text(data: Any) -> tuple[str, str]:
    """(reason, message) from the documented error bodies of the YouTube Data API and the Dailymotion API."""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        reasons = [str(e["reason"]) for e in err.get("errors") or () if isinstance(e, dict) and e.get("reason")]
        reason = reasons[0] if reasons else str(err.get("type") or err.get("status") or "")
        return reason, str(err.get("message") or reason)
    if isinstance(err, str):
        return err, str(data.get("error_description") or err)
    return "", ""


def get_json(http: HttpClient, base_url: str, path: str, params: dict[str, Any], *, what: str,
             secrets: tuple[str, ...] = ("key",), headers: dict[str, str] | None = None) -> dict:
    """GET ``base_url + path`` with ``params``; the decoded JSON object, or ApiError without the secret values."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    url = f"{base_url.rstrip('/')}{path}?{urlencode(query, doseq=True)}"
    shown = {k: ("..." if k in secrets else v) for k, v in query.items()}
    where = f"{what} {path}?{urlencode(shown, doseq=True, safe='.,')}"
    try:
        status, body, encoding = _get(http, url, headers)
    except NETWORK_ERRORS as exc:
        raise ApiError(f"{where}: no answer ({exc.__class__.__name__})") from exc
    except MeasurementError as exc:  # the host could not be resolved, or its address is refused
        raise ApiError(f"{where}: {exc}") from exc
    try:
        data = json.loads(body.decode(encoding or "utf-8", errors="replace"))
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict):
        reason, message = _error_text(data)
        cls = QuotaExceeded if status == 403 and reason in QUOTA_REASONS else ApiError
        raise cls(f"{where}: HTTP {status}" + (f": {message}" if message else ""), status=status, reason=reason)
    return data


def _get(http: HttpClient, url: str, headers: dict[str, str] | None) -> tuple[int, bytes, str | None]:
    """The status, body and charset of a GET: through libcurl as the media requests go (no browser presented: yt-dlp
    impersonates none of these platforms' API or page requests), or through ``requests`` behind a proxy or with
    ``--http 1.1``."""
    if through_transport(http):
        page = get_page(http, url, headers=headers, limit_bytes=_LIMIT_BYTES)
        return page.status_code, page.body, requests.utils.get_encoding_from_headers(page.headers)
    resp = http.request("GET", url, stream=True, headers=headers)
    try:
        return resp.status_code, resp.raw.read(_LIMIT_BYTES, decode_content=True) or b"", resp.encoding
    finally:
        resp.close()
