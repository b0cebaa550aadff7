"""Records of what each measurement stage observed; summaries are derived properties; imports nothing else.

Every record is frozen but the accumulators in ``FILLED_WHILE_MEASURED``: a stage fills them while it measures
(a transfer's bytes and times, a live session's reloads, a video's hops and downloads, the crawl's counts), and
nothing changes them once the video is handed to the sinks (a sink, and every reader after it, sees it whole).
"""

from pytomo.results.clock import iso, local_iso, utc_now
from pytomo.results.media import MediaInfoResult, Presentation, Segment, Track
from pytomo.results.network import (
    TCP_INFO_FIELD_NAMES,
    TCP_INFO_LAYOUT,
    AddressOrigin,
    ConnectionUse,
    DnsAnswer,
    Hop,
    RttResult,
    RttSample,
)
from pytomo.results.page import MediaDescriptor, MediaStream
from pytomo.results.playout import BufferPoint, PlayoutInput, PlayoutParams, PlayoutResult, ProfilePlayout, Stall
from pytomo.results.reference import PICTURE_STALL_S, PlayerAccount, StallInterval
from pytomo.results.transfer import LiveFacts, SegmentedSession, SegmentRecord, Transfer
from pytomo.results.video import CrawlSummary, DownloadAnalysis, Sink, VideoMeasurement

FILLED_WHILE_MEASURED = (Transfer, LiveFacts, SegmentedSession, DownloadAnalysis, VideoMeasurement, CrawlSummary)

__all__ = [
    "TCP_INFO_FIELD_NAMES", "TCP_INFO_LAYOUT", "AddressOrigin", "BufferPoint", "ConnectionUse", "CrawlSummary",
    "DnsAnswer",
    "DownloadAnalysis", "FILLED_WHILE_MEASURED", "Hop", "LiveFacts", "MediaDescriptor", "MediaInfoResult",
    "MediaStream", "PlayoutInput",
    "PlayoutParams",
    "PlayoutResult", "ProfilePlayout", "PICTURE_STALL_S", "PlayerAccount", "StallInterval",
    "Presentation", "RttResult", "RttSample", "Segment", "SegmentRecord", "SegmentedSession", "Sink", "Stall", "Track",
    "Transfer", "VideoMeasurement", "iso", "local_iso", "utc_now",
]
