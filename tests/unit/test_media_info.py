"""MediaInfo on the first 512 KiB of the lab videos (plus the moov for moov-at-end) against ffmpeg's facts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pytomo.errors import MediaError
from pytomo.lab.media import LabMedia
from pytomo.media.info import probe
from tests.unit.media_fixtures import index_bytes, lab_media, media_cache  # noqa: F401

HEAD_BYTES = 512 * 1024
EXPECTED = {  # container, video codec, audio codec as MediaInfo names them once normalised
    "mp4": ("mp4", "h264", "aac"),
    "mp4-moov-end": ("mp4", "h264", "aac"),
    "fmp4": ("mp4", "h264", "aac"),
    "webm": ("webm", "vp8", "opus"),
    "flv": ("flv", "h264", "aac"),
}


@pytest.fixture
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder probe() uses, so that a leftover file would show."""
    folder = tmp_path / "probe-temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def head_and_tail(media: LabMedia) -> tuple[bytes, tuple[int, bytes] | None]:
    data = media.path.read_bytes()
    head = data[:HEAD_BYTES]
    if media.spec.container != "mp4-moov-end":
        return head, None
    request = index_bytes(head).tail_request()
    assert request is not None and request[1] is None
    return head, (request[0], data[request[0]:])


def test_head_only_probe_matches_ffmpeg(lab_media: LabMedia, private_tempdir: Path) -> None:  # noqa: F811
    head, tail = head_and_tail(lab_media)
    result = probe(head, lab_media.size_bytes, tail)
    assert (result.container, result.video_codec, result.audio_codec) == EXPECTED[lab_media.spec.container]
    assert result.duration_s == pytest.approx(lab_media.duration_s, rel=0.01)
    assert result.overall_bitrate_bps == pytest.approx(lab_media.bitrate_bps, rel=0.02)
    assert (result.width, result.height) == (lab_media.spec.width, lab_media.spec.height)
    assert result.frame_rate == pytest.approx(lab_media.spec.fps)
    assert list(private_tempdir.iterdir()) == []


def test_whole_file_probe_matches_ffmpeg(lab_media: LabMedia) -> None:  # noqa: F811
    data = lab_media.path.read_bytes()
    result = probe(data, len(data))
    assert result.duration_s == pytest.approx(lab_media.duration_s, rel=0.01)
    assert result.overall_bitrate_bps == pytest.approx(lab_media.bitrate_bps, rel=0.02)


def test_moov_at_end_without_tail_has_no_duration(media_cache: Path) -> None:  # noqa: F811
    from pytomo.lab.media import MediaSpec, ensure_media

    media = ensure_media(MediaSpec("mp4-moov-end", duration_s=10.0))
    with pytest.raises(MediaError) as caught:  # MediaInfo sees no track without the moov
        probe(media.path.read_bytes()[:HEAD_BYTES], media.size_bytes)
    assert "format: mp4" in str(caught.value)


def test_html_is_not_media(private_tempdir: Path) -> None:
    page = b"<!doctype html><html><head><title>Video unavailable</title></head><body></body></html>"
    with pytest.raises(MediaError) as caught:
        probe(page, len(page))
    assert caught.value.kind == "not_media"
    assert caught.value.stage == "media"
    assert list(private_tempdir.iterdir()) == []


def test_unknown_size_uses_the_bytes_given(media_cache: Path) -> None:  # noqa: F811
    from pytomo.lab.media import MediaSpec, ensure_media

    media = ensure_media(MediaSpec("mp4", duration_s=10.0))
    result = probe(media.path.read_bytes()[:HEAD_BYTES], None)
    assert result.duration_s == pytest.approx(media.duration_s, rel=0.01)
    # Without the real size MediaInfo can only divide the bytes it was given by the duration.
    assert result.overall_bitrate_bps == pytest.approx(HEAD_BYTES * 8 / media.duration_s, rel=0.02)
