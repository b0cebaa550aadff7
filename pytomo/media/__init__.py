"""Media files as bytes arrive: the container's index as a timeline of playable time, MediaInfo's view, and the
HLS and DASH manifests that list their segments."""

from pytomo.media.index import MediaIndexer
from pytomo.media.info import probe
from pytomo.media.timeline import MediaTimeline

__all__ = ["MediaIndexer", "MediaTimeline", "probe"]
