"""How a value is shown in its unit, the same on every page, RRD graph, verdict, summary and alert: bit/s and bytes
with SI prefixes and three significant digits ("1.06 Gbit/s"), the unit a figure's name declares (``_bps`` bit/s,
``_bytes`` bytes, ``_ms`` ms, ``_s`` s). Imports nothing else of ours, so that every layer may use it."""

from __future__ import annotations

import math

NO_VALUE = "–"
SI_UNITS = {"bit/s": "bit/s", "bytes": "B"}  # units shown with SI prefixes (powers of 1000), as they are written
SI_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
BARE_UNITS = {"ratio", "code"}  # shown as numbers alone
NAME_UNITS = (("_bps", "bit/s"), ("_bytes", "bytes"), ("_ms", "ms"), ("_s", "s"))
"""The unit a stored figure's name ends with, as the pages write it (pytomo/figures.py names every figure so)."""


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits in fixed notation, never fewer whole digits (1234 stays 1234)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    if decimals and float(text) != 0 and math.floor(math.log10(abs(float(text)))) > math.floor(math.log10(abs(value))):
        text = f"{value:.{decimals - 1}f}"  # rounding went up a decade (9.996 -> 10.0): keep three digits
    return text


def si_prefix(value: float) -> tuple[float, str]:
    """The factor and SI prefix that show ``value`` from 1 to 999 once rounded to three significant digits (999.7 k
    is 1.00 M); below 1 no prefix."""
    for factor, prefix in SI_PREFIXES:
        if abs(float(significant(value / factor))) >= 1:
            return factor, prefix
    return 1.0, ""


def in_unit(value: float | None, unit: str) -> str:
    """A value as every page and graph shows it in its unit: bit/s and bytes with SI prefixes and three significant
    digits ("1.06 Mbit/s", "950 bit/s", "1.34 MB"), a share in % ("14.3 %"), others as numbers with their unit
    ("0.0512 ms", "12.3 s"); a dash for no value."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return NO_VALUE
    if unit in SI_UNITS:
        factor, prefix = si_prefix(value)
        return f"{significant(value / factor)} {prefix}{SI_UNITS[unit]}"
    if unit in BARE_UNITS:
        return significant(value)
    return f"{significant(value)} {unit}"


def unit_of(name: str) -> str | None:
    """The unit a figure's column name declares (``avg_throughput_bps``: bit/s; ``bytes`` alone: bytes), None when it
    names none."""
    return next((unit for suffix, unit in NAME_UNITS if name.endswith(suffix) or name == suffix[1:]), None)


def scaled_unit(unit: str, scale: float) -> str:
    """The unit of a value that is ``scale`` times smaller than in ``unit``: ``kbit/s`` for (bit/s, 1000), as the
    2015 columns stored rates; ``unit`` itself for a scale of 1, else ``unit / scale`` written out."""
    if scale == 1:
        return unit
    if unit in SI_UNITS:
        prefix = next((p for factor, p in SI_PREFIXES if factor == scale), None)
        if prefix is not None:
            return f"{prefix}{SI_UNITS[unit]}"
    return f"{unit} × {scale:g}"
