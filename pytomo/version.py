"""Single source of the software version."""

__version__ = "4.0.0.dev0"
