"""Bearer tokens of the collector: stored salted and hashed (SHA-256), one JSON line each, compared in constant time."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from pytomo.errors import UsageError
from pytomo.results import iso, utc_now

ROLES = ("volunteer", "researcher")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
PREFIX = "ptk_"


@dataclass(frozen=True)
class Holder:
    """Whom a token belongs to."""

    name: str
    role: str


def _digest(salt: str, token: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + token.encode("utf-8")).hexdigest()


def add_token(path: Path, name: str, role: str = "volunteer") -> str:
    """Add a token for ``name`` to the file (created 0600) and return the token, which is stored only hashed."""
    if not NAME.fullmatch(name):
        raise UsageError(f"token name must be 1 to 64 letters, digits, '.', '_', '@' or '-', not {name!r}")
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    line = json.dumps({"name": name, "role": role, "salt": salt, "sha256": _digest(salt, token),
                       "added_at": iso(utc_now())}, sort_keys=True)
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line + "\n")
    return token


class TokenStore:
    """The tokens of a file, read again when the file changes (so tokens added while serving count)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: list[dict[str, str]] = []
        self._load()

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise UsageError(f"cannot read the tokens file {self.path}: {exc.strerror}") from exc
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        entries = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                bytes.fromhex(e["salt"])
                ok = e["role"] in ROLES and isinstance(e["name"], str) and len(e["sha256"]) == 64
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise UsageError(f"tokens file {self.path}, line {number}: not a token entry")
            entries.append(e)
        self._entries, self._stamp = entries, stamp

    def check(self, token: str) -> Holder | None:
        """Whose token this is, or None; every entry is compared, in constant time each."""
        if not token or len(token) > 256:
            return None
        with self._lock:
            try:
                self._load()
            except UsageError:
                pass  # keep the tokens read before
            entries = self._entries
        found: Holder | None = None
        for e in entries:
            if hmac.compare_digest(_digest(e["salt"], token), e["sha256"]) and found is None:
                found = Holder(e["name"], e["role"])
        return found
