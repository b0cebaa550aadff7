"""The lab's certificate authority, made at start: a certificate for every lab host name, as files and contexts."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import trustme

# A cache server's certificate as a scripted fault: issued for another name, expired, or by a CA nobody trusts.
TLS_FAULTS = ("tls_wrong_name", "tls_expired", "tls_unknown_ca")
_WRONG_NAME = "not-this-host.invalid"


class LabTLS:
    """One certificate authority (``ca_file``: its PEM, what a client trusts) and the certificates it issues.

    Each certificate is written once into ``folder`` as a chain (leaf first) and a private key, the form nginx,
    Caddy and Python's ``ssl`` all load. A second, untrusted authority issues the ``tls_unknown_ca`` certificates.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="Pytomo lab")
        self._stranger = trustme.CA(organization_name="Pytomo lab, untrusted")
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._issued: dict[tuple[str, str | None], tuple[Path, Path]] = {}

    def cert_files(self, host: str, fault: str | None = None) -> tuple[Path, Path]:
        """The chain and key files of ``host``'s certificate, as the fault (one of TLS_FAULTS, or None) asks."""
        fault = fault if fault in TLS_FAULTS else None
        key = (host, fault)
        if key not in self._issued:
            ca = self._stranger if fault == "tls_unknown_ca" else self.ca
            names = (_WRONG_NAME,) if fault == "tls_wrong_name" else (host,)
            if fault == "tls_expired":
                now = datetime.datetime.now(datetime.UTC)
                cert = ca.issue_cert(*names, not_before=now - datetime.timedelta(days=30),
                                     not_after=now - datetime.timedelta(days=1))
            else:
                cert = ca.issue_cert(*names)
            stem = self.folder / f"{host}{'-' + fault if fault else ''}"
            chain, private = stem.with_suffix(".chain.pem"), stem.with_suffix(".key.pem")
            chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
            cert.private_key_pem.write_to_path(str(private))
            private.chmod(0o644)  # nginx's workers may run as another user; the lab's keys guard nothing real
            self._issued[key] = (chain, private)
        return self._issued[key]

    def server_context(self, host: str, fault: str | None = None) -> ssl.SSLContext:
        """A server-side context presenting ``host``'s certificate, offering HTTP/1.1 by ALPN, noting each
        connection's SNI (``received_sni``)."""
        chain, private = self.cert_files(host, fault)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(chain), str(private))
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = _note_sni
        return ctx


def _note_sni(conn: ssl.SSLSocket | ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
    """The handshake's SNI callback: keep the name the client asked for on its connection (None: no SNI)."""
    conn.lab_sni = server_name  # type: ignore[union-attr]


def received_sni(conn: object) -> str | None:
    """The server name a server-side TLS connection received in its client's hello (None: none, or not TLS)."""
    return getattr(conn, "lab_sni", None)
