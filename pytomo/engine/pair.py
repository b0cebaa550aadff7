"""A video-only stream and its audio stream played together, as a player plays a format pair.

Each stream has its own transfer and its own container index; the player starts when both hold the initial
buffer and stalls when either runs under the minimum, so the playable media time at any moment is the smaller of
the two. The pair's figures go on the video stream's row; the audio row keeps its own transfer figures.
"""

from __future__ import annotations

from pytomo.engine.analysis import downsample
from pytomo.engine.playout import simulate
from pytomo.results import DownloadAnalysis, PlayoutInput, PlayoutParams


def play_pair(video: DownloadAnalysis, audio: DownloadAnalysis, audio_offset_s: float,
              params: PlayoutParams) -> None:
    """Replace the video row's playout with the pair's; ``audio_offset_s``: the audio clock minus the video clock."""
    video.stream_role, audio.stream_role = "video", "audio"
    vt, at = video.transfer, audio.transfer
    video.pair_bytes = vt.bytes_total + at.bytes_total
    firsts = [t for t in (vt.first_byte_s, None if at.first_byte_s is None else at.first_byte_s + audio_offset_s)
              if t is not None]
    lasts = [t for t in (vt.last_byte_s, None if at.last_byte_s is None else at.last_byte_s + audio_offset_s)
             if t is not None]
    counted = video.pair_bytes - vt.first_read_bytes - at.first_read_bytes
    if firsts and lasts and max(lasts) > min(firsts):
        video.pair_avg_throughput_bps = counted * 8 / (max(lasts) - min(firsts))
    audio.playout, audio.playout_input = None, None
    audio.timeline_points = []
    audio.playout_problem = "played together with the video stream: the pair's playout is on the video row"
    if video.playout is None or not audio.media_events:
        video.playout, video.playout_input, video.timeline_points = None, None, []
        video.playout_problem = (video.playout_problem or audio.playout_problem
                                 or "no media time for one stream of the pair")
        if not audio.media_events:
            video.playout_problem = f"the audio stream has no media time ({audio.media_problem or 'no index'})"
        return
    merged = sorted([(t, 0, b, m) for t, b, m in video.media_events]
                    + [(t + audio_offset_s, 1, b, m) for t, b, m in audio.media_events])
    latest_bytes, latest_media = [0, 0], [0.0, 0.0]
    events = []
    for t_s, which, received, media_s in merged:
        latest_bytes[which], latest_media[which] = received, media_s
        events.append((t_s, latest_bytes[0] + latest_bytes[1], min(latest_media)))
    durations = [d for d in (video.media_duration_s, audio.media_duration_s) if d]
    end_s = video.playout.end_s
    duration_s = min(durations) if durations else None
    video.playout_input = PlayoutInput(tuple(events), end_s, duration_s, vt.complete and at.complete)
    video.playout = simulate(events, end_s, params, media_duration_s=min(durations) if durations else None,
                             complete=vt.complete and at.complete)
    video.timeline_points = downsample(video.playout.timeline, vt.bin_s)
