"""Bearer tokens of the collector: stored salted and hashed (SHA-256), one JSON line each, compared in constant time.

A name is given once: ``add_token`` refuses a name already in the file (revoked or not), since the index names
uploads by it. ``revoke_token`` rewrites the file (a temporary file renamed over it) with the entry's
``revoked_at`` set; a running collector reads the file again when it changes and refuses the token from then on.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

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


@dataclass(frozen=True)
class Entry:
    """What ``tokens list`` shows of a token: never its hash nor its salt."""

    name: str
    role: str
    added_at: str
    revoked_at: str | None


def _entries(text: str, path: Path) -> list[dict[str, str]]:
    """The token entries of a file's text; UsageError naming the first line that is not one."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            bytes.fromhex(e["salt"])
            ok = e["role"] in ROLES and isinstance(e["name"], str) and len(e["sha256"]) == 64
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise UsageError(f"tokens file {path}, line {number}: not a token entry")
        entries.append(e)
    return entries


@contextmanager
def _locked(path: Path, create: bool) -> Iterator[TextIO]:
    """The tokens file open for reading and appending, under an exclusive lock; the file that is at ``path`` once
    locked (a revocation may have renamed a new one over it meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            raise UsageError(f"no tokens file at {path}") from None
        fh = os.fdopen(fd, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                fh.seek(0)
                yield fh
                return
        finally:
            fh.close()


def add_token(path: Path, name: str, role: str = "volunteer") -> str:
    """Add a token for ``name`` to the file (created 0600) and return the token, which is stored only hashed;
    UsageError for a name already there."""
    if not NAME.fullmatch(name):
        raise UsageError(f"token name must be 1 to 64 letters, digits, '.', '_', '@' or '-', not {name!r}")
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    line = json.dumps({"name": name, "role": role, "salt": salt, "sha256": _digest(salt, token),
                       "added_at": iso(utc_now())}, sort_keys=True)
    path = Path(path)
    with _locked(path, create=True) as fh:
        for e in _entries(fh.read(), path):
            if e["name"] == name:
                state = f"revoked on {e['revoked_at']}" if e.get("revoked_at") else "in use"
                raise UsageError(f"a token named {name} is already in {path} ({state}); names are not reused, "
                                 "since the collector's index names uploads by them: choose another name")
        fh.write(line + "\n")
    return token


def list_tokens(path: Path) -> list[Entry]:
    """The file's tokens, in the order they were added."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no tokens file at {path}") from None
    return [Entry(e["name"], e["role"], str(e.get("added_at", "")), e.get("revoked_at"))
            for e in _entries(text, path)]


def revoke_token(path: Path, name: str) -> tuple[Entry, bool]:
    """Mark ``name``'s token revoked (the file rewritten and renamed over itself): its entry, and whether it was
    revoked now (False: it already was). UsageError when no token has that name."""
    path = Path(path)
    with _locked(path, create=False) as fh:
        entries = _entries(fh.read(), path)
        found = [e for e in entries if e["name"] == name]
        if not found:
            raise UsageError(f"no token named {name} in {path}")
        entry = found[0]
        now = not entry.get("revoked_at")
        if now:
            entry["revoked_at"] = iso(utc_now()) or ""
            _rewrite(path, entries)
    return Entry(entry["name"], entry["role"], str(entry.get("added_at", "")), entry["revoked_at"]), now


def _rewrite(path: Path, entries: list[dict[str, str]]) -> None:
    """The file's new content, whole or not at all: a temporary file (0600) fsynced and renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(e, sort_keys=True) + "\n" for e in entries)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TokenStore:
    """The tokens of a file, read again when the file changes (so tokens added while serving count)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._entries: list[dict[str, str]] = []
        self._load()

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise UsageError(f"cannot read the tokens file {self.path}: {exc.strerror}") from exc
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        self._entries, self._stamp = _entries(self.path.read_text(encoding="utf-8"), self.path), stamp

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
                found = None if e.get("revoked_at") else Holder(e["name"], e["role"])
        return found
