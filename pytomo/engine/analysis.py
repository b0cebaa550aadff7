"""From one transfer to media figures and the playout: container index, MediaInfo, encoding rate, stalls."""

from __future__ import annotations

import logging

from pytomo.engine.live import measure_latency
from pytomo.engine.picture import simulate_picture
from pytomo.engine.playout import simulate
from pytomo.engine.profiles import PlayerProfile
from pytomo.errors import MediaError, ParserFailure
from pytomo.media.index import MediaIndexer
from pytomo.media.info import probe
from pytomo.media.timeline import MediaTimeline
from pytomo.results import (
    BufferPoint,
    DownloadAnalysis,
    MediaInfoResult,
    PlayoutInput,
    PlayoutParams,
    ProfilePlayout,
    SegmentedSession,
    Transfer,
)

log = logging.getLogger(__name__)


def downsample(points: tuple[BufferPoint, ...], bin_s: float) -> list[BufferPoint]:
    """Keep state changes and the first point of each bin, so a graph has the shape without every read."""
    out: list[BufferPoint] = []
    last_bin, last_state = -1, None
    for i, pt in enumerate(points):
        b = int(pt.t_s / bin_s)
        if pt.state != last_state or b != last_bin or i == len(points) - 1:
            out.append(pt)
        last_bin, last_state = b, pt.state
    return out


NO_PLAYABLE_MEDIA = "no_playable_media"
_LIMIT_KINDS = frozenset({"box_too_large", "impossible_size", "too_many_samples"})  # the index's budget was crossed
_NO_DECLARED_DURATION = frozenset({"ts"})  # containers whose header never states a duration


def _mediainfo_tail(transfer: Transfer, indexer: MediaIndexer,
                    tail: tuple[int, bytes] | None) -> tuple[int, bytes] | None:
    """The bytes MediaInfo needs beyond the head: the fetched tail, else an MP4's moov received past the head."""
    if tail is not None:
        return tail
    moov = indexer.moov_box()
    if moov is not None and moov[0] + len(moov[1]) > len(transfer.head):
        return moov
    return None


def media_duration(info: MediaInfoResult | None, timeline: MediaTimeline | None, container: str | None,
                   whole: bool) -> tuple[float | None, str | None, str | None]:
    """(duration in seconds, its source, why it is NULL) of a progressive file; never a guess.

    A duration the container's header declares (read by MediaInfo, else by our index) comes first. Without one,
    the end of the container index (the latest presentation end over the tracks) is the duration only when the
    whole file was received; else it is NULL. For
    containers that declare none (MPEG-TS), what MediaInfo says of a partial file is an estimate from the bitrate
    of the head, so it is not used.
    """
    declares = container not in _NO_DECLARED_DURATION and (info is None or info.container not in _NO_DECLARED_DURATION)
    if declares and info is not None and info.duration_s:
        return info.duration_s, "mediainfo", None
    if declares and timeline is not None and timeline.duration_s:
        return timeline.duration_s, "container-header", None
    if whole and timeline is not None and timeline.indexed_end_s:
        return timeline.indexed_end_s, "container-index", None
    if whole and info is not None and info.duration_s:
        return info.duration_s, "mediainfo", None
    what = "MPEG-TS declares no duration" if not declares else "the container declares no duration"
    return None, None, f"{what} and the file was not received whole: duration and encoding rate unknown"


def analyse(transfer: Transfer, indexer: MediaIndexer, params: PlayoutParams,
            tail: tuple[int, bytes] | None = None) -> DownloadAnalysis:
    """Derive media and playout figures from a transfer and the index its bytes fed."""
    a = DownloadAnalysis(transfer=transfer, params=params)
    if transfer.bytes_total == 0:
        a.media_problem = a.playout_problem = "no media bytes were received"
        return a
    a.container = indexer.container
    whole = transfer.complete
    if whole:
        indexer.end_of_file()
    _probe(a, transfer, indexer, tail)
    timeline = indexer.timeline()
    unplayable = indexer.unplayable(whole)
    if unplayable is not None:  # a container with no track, sample, tag or block: an error, never an ok row
        a.not_media, a.media_problem_kind = True, NO_PLAYABLE_MEDIA
        a.media_problem = f"nothing playable in the {indexer.container} file: {unplayable}"
        a.playout_problem = "nothing playable"
        return a
    if indexer.problem_kind == "impossible_size":  # the file contradicts itself: no guess from an average bitrate
        a.not_media, a.media_problem_kind = True, "impossible_size"
        a.media_problem = indexer.problem
        a.playout_problem = "the file declares more bytes than it holds"
        return a
    if a.media is None and timeline is None:
        a.not_media = True
        a.media_problem_kind = indexer.problem_kind if indexer.problem_kind in _LIMIT_KINDS else None
        a.media_problem = indexer.problem or a.media_problem or "not a media file"
        a.playout_problem = "not a media file"
        return a
    info = a.media
    a.container = a.container or (info.container if info else None)
    size = transfer.content_length_bytes or (transfer.bytes_total if whole else None)
    _duration_and_rate(a, info, timeline, indexer.container, whole, size)
    timeline = _media_timeline(a, indexer, timeline, size)
    if timeline is None:
        return a
    _play(a, transfer, timeline, params)
    return a


def _probe(a: DownloadAnalysis, transfer: Transfer, indexer: MediaIndexer, tail: tuple[int, bytes] | None) -> None:
    """MediaInfo's reading of the received bytes into ``a.media``, or why there is none in ``a.media_problem``."""
    try:
        a.media = probe(transfer.head, transfer.content_length_bytes, _mediainfo_tail(transfer, indexer, tail))
    except ParserFailure as exc:  # the child is gone; the container index and the playout still go on
        a.parser_failure, a.media_problem = exc, str(exc)
    except MediaError as exc:
        a.media_problem = str(exc)
    except OSError as exc:  # the temporary file or the child's pipes; hostile bytes come back as MediaError
        log.debug("MediaInfo failed", exc_info=True)
        a.media_problem = f"MediaInfo failed: {exc}"


def _duration_and_rate(a: DownloadAnalysis, info: MediaInfoResult | None, timeline: MediaTimeline | None,
                       container: str | None, whole: bool, size: int | None) -> None:
    """The media duration (and its source) and the encoding rate (and its source)."""
    duration_s, source, why = media_duration(info, timeline, container, whole)
    a.media_duration_s, a.media_duration_source = duration_s, source
    if why:
        a.media_problem = a.media_problem or why
    if source == "mediainfo" and info and info.overall_bitrate_bps:
        a.encoding_rate_bps, a.encoding_rate_source = info.overall_bitrate_bps, "mediainfo-overall"
    elif size and duration_s:
        a.encoding_rate_bps, a.encoding_rate_source = size * 8 / duration_s, "size-over-duration"


def _media_timeline(a: DownloadAnalysis, indexer: MediaIndexer, timeline: MediaTimeline | None,
                    size: int | None) -> MediaTimeline | None:
    """The container index's timeline, else one from the average bitrate; None (``a`` says why) without either."""
    if timeline is not None:
        a.media_time_source = timeline.source
        return timeline
    if a.encoding_rate_bps:
        timeline = MediaTimeline.from_average_bitrate(a.encoding_rate_bps, size, a.media_duration_s)
        a.media_time_source = timeline.source
        a.media_problem = f"no container index ({indexer.problem}); media time from the average bitrate"
        return timeline
    # nothing tells what media time the bytes hold: no playback can be said, so nothing was measured
    a.playout_problem = f"no media time: {indexer.problem or 'no container index and no encoding rate'}"
    a.not_media = True
    a.media_problem_kind = indexer.problem_kind if indexer.problem_kind in _LIMIT_KINDS else "no_media_time"
    a.media_problem = a.media_problem or a.playout_problem
    return None


def _play(a: DownloadAnalysis, transfer: Transfer, timeline: MediaTimeline, params: PlayoutParams) -> None:
    """The media time each arrival made playable, and the playout they give."""
    events = []
    last_media = -1.0
    for t_s, received in zip(transfer.event_t_s, transfer.event_bytes):
        media_s = timeline.time_at(received)
        if media_s != last_media:
            events.append((t_s, received, media_s))
            last_media = media_s
    if transfer.ended_by in ("window", "eof") and transfer.headers_s is not None:
        end_s = transfer.headers_s + transfer.window_s
    else:
        end_s = transfer.last_byte_s or transfer.headers_s or 0.0
    a.media_events = events
    a.playout_input = PlayoutInput(tuple(events), end_s, a.media_duration_s, transfer.complete)
    a.playout = simulate(events, end_s, params, media_duration_s=a.media_duration_s, complete=transfer.complete)
    a.timeline_points = downsample(a.playout.timeline, transfer.bin_s)


_CODECS = (("avc", "h264"), ("hvc", "h265"), ("hev", "h265"), ("vp09", "vp9"), ("vp8", "vp8"), ("av01", "av1"),
           ("mp4a", "aac"), ("opus", "opus"), ("ac-3", "ac3"), ("ec-3", "eac3"))


def codec_name(rfc6381: str | None) -> str | None:
    """``avc1.64001e`` -> ``h264``, ``mp4a.40.2`` -> ``aac``; None when unknown."""
    for prefix, name in _CODECS:
        if rfc6381 and rfc6381.strip().lower().startswith(prefix):
            return name
    return None


def analyse_segments(session: SegmentedSession, params: PlayoutParams) -> DownloadAnalysis:
    """Media and playout figures of a segmented session (media time from segment durations)."""
    t = session.transfer
    a = DownloadAnalysis(transfer=t, params=params, delivery=session.presentation.protocol
                         if session.presentation else "segmented", segments=list(session.records))
    a.container = a.delivery
    pres = session.presentation
    if pres is None:
        a.media_problem = a.playout_problem = "the manifest could not be loaded"
        return a
    played = [r for r in session.media_records() if r.stream in ("video", "muxed")]
    rid = played[-1].rendition_id if played else None
    video = next((v for v in pres.video if v.rendition_id == rid), pres.video[-1])
    codecs = [c.strip() for c in (video.codecs or "").split(",") if c.strip()]
    audio_codecs = [codec_name(x.codecs) for x in pres.audio] + [codec_name(c) for c in codecs[1:]]
    a.media = MediaInfoResult(container=pres.protocol, video_codec=codec_name(codecs[0] if codecs else None),
                              audio_codec=next((c for c in audio_codecs if c), None), duration_s=pres.duration_s,
                              overall_bitrate_bps=None, video_bitrate_bps=video.bandwidth_bps,
                              audio_bitrate_bps=pres.audio[0].bandwidth_bps if pres.audio else None,
                              width=video.width, height=video.height, frame_rate=video.frame_rate)
    a.media_duration_s = pres.duration_s
    a.rendition_id, a.declared_bandwidth_bps, a.rendition_switches = video.rendition_id, video.bandwidth_bps, \
        session.switches
    a.encoding_rate_bps = session.encoding_rate_bps
    a.encoding_rate_source = "segments" if a.encoding_rate_bps else None
    a.media_time_source = "segment-durations"
    a.playout = session.playout
    if a.playout is not None:
        a.playout_input = PlayoutInput(tuple(session.events), a.playout.end_s, pres.duration_s,
                                       t.ended_by == "eof", av_events=tuple(session.av_events))
        a.playout = simulate(session.events, a.playout.end_s, params, pres.duration_s, complete=t.ended_by == "eof")
        a.timeline_points = downsample(a.playout.timeline, t.bin_s)
    a.live = session.live
    if a.live is not None:
        measure_latency(a.live, a.playout)
    return a


def play_profiles(a: DownloadAnalysis, chosen: tuple[PlayerProfile, ...], driving: str | None = None) -> None:
    """Every chosen profile's playout over the arrivals the 2015 one played (``a.profile_playouts``)."""
    a.profile_playouts = []
    for prof in chosen:
        drove = prof.name == driving
        if a.playout_input is None:
            a.profile_playouts.append(ProfilePlayout(prof.name, drove, None, a.playout_problem or "no playout"))
            continue
        i = a.playout_input
        if prof.video_underflow_grace_s is not None and i.av_events:  # separate audio and video buffers
            result = simulate_picture(i.av_events, i.end_s, prof.params(), prof.video_underflow_grace_s,
                                      media_duration_s=i.media_duration_s, complete=i.complete)
        else:
            result = simulate(i.events, i.end_s, prof.params(), media_duration_s=i.media_duration_s,
                              complete=i.complete)
        a.profile_playouts.append(ProfilePlayout(prof.name, drove, result,
                                                 None if result.started else "not_started"))
