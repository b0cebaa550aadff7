"""A hop of the redirect walk over libcurl, on the connections (and protocols) the media then use, as a browser
follows redirects: HEAD, asked again with GET after an error answer, whose body is not read."""

from __future__ import annotations

import requests

from pytomo.engine.curl import CurlAnswer, CurlTransport, CurlTransportError
from pytomo.engine.impersonate import FirstByte

# how long a hop waits for libcurl to end its request (a HEAD ends with its head), so that its connection is back in
# the pool for the next request to the origin (the download) instead of a second one being opened
END_WAIT_S = 1.0


def ask(transport: CurlTransport, url: str, address: str, headers: dict[str, str], *, timeout_s: float,
        deadline_s: float) -> FirstByte:
    """HEAD ``url`` at ``address`` over libcurl; an error answer (400 and above) is asked again with GET, whose
    answer is the one returned (its body is not read: libcurl ends the request at its first chunk, which resets an
    HTTP/2 or HTTP/3 stream and closes an HTTP/1.1 connection). A failure without an answer is ``requests.Timeout``
    (libcurl's timeout) or ``requests.ConnectionError``, caused by libcurl's error (its TLS kinds: ``curl_failure``)."""
    head = _one(transport, "HEAD", url, address, headers, timeout_s, deadline_s)
    if head.status_code >= 400:
        head = _one(transport, "GET", url, address, headers, timeout_s, deadline_s)
    return head


def _one(transport: CurlTransport, method: str, url: str, address: str, headers: dict[str, str], timeout_s: float,
         deadline_s: float) -> FirstByte:
    answer = transport.request(url, address, headers=headers, timeout_s=timeout_s, deadline_s=deadline_s,
                               method=method)
    if answer.sock is not None:
        answer.sock.close()
    if answer.headers_at is None:  # no answer: libcurl's error
        raise _failure(answer)
    if method == "GET":
        answer.cancel()  # the body is not read
    answer.ended.wait(END_WAIT_S)
    return FirstByte(answer.status_code, answer.headers, answer.http_version, answer.impersonate, answer.connection,
                     answer.http_stream_id)


def _failure(answer: CurlAnswer) -> requests.RequestException:
    error = answer.error or CurlTransportError(0, "libcurl gave no answer")
    failure = requests.Timeout(str(error)) if error.code == 28 else requests.ConnectionError(str(error))
    failure.__cause__ = error
    return failure
