"""Single source of the software version."""

__version__ = "4.0.0.dev0"


def version_lines() -> list[str]:
    """``--version``: Pytomo's version, yt-dlp's, and the JS runtime and yt-dlp-ejs that yt-dlp detects now."""
    from pytomo.services.jsruntime import detect

    return [f"pytomo {__version__}", *detect().lines()]
