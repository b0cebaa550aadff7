"""The run database as the crawl's Sink: each video stored in one transaction, the run row closed at the end."""

from __future__ import annotations

from pytomo.results import Sink, VideoMeasurement
from pytomo.storage.sqlite import RunDatabase


class DatabaseSink(Sink):
    """Stores each video as soon as it is measured; StorageError (a full disk) stops the crawl."""

    def __init__(self, db: RunDatabase) -> None:
        self.db = db

    def add(self, video: VideoMeasurement) -> None:
        """Store the video with everything observed."""
        self.db.add_video(video)

    def close(self, status: str, stop_reason: str | None = None) -> None:
        """Close the run row and the database."""
        self.db.finish(status, stop_reason)
