"""Pytomo: a pluggable measurement crawler for video streaming."""

from pytomo.version import __version__

__all__ = ["__version__"]
