"""The uploader's network, looked up from its address (which is not kept): AS number and country."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """The uploader's network, from its address: AS number and country (either may be None)."""

    asn: int | None = None
    country: str | None = None
    problem: str | None = None
