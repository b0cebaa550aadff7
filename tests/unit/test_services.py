"""Service plugins: the static registry and URL routing, checked on each plugin's own TESTS data."""

import pytest

from pytomo.errors import UsageError
from pytomo.services import SERVICES, by_name, for_url
from pytomo.services.generic import GenericService
from pytomo.services.lab import LabService
from pytomo.settings import PLUGIN_SECTIONS, SETTINGS


def test_registry_is_static_ordered_and_generic_is_last():
    assert SERVICES[-1] is GenericService
    assert len({s.NAME for s in SERVICES}) == len(SERVICES)
    for s in SERVICES:
        assert s.NAME and s.LABEL and s.URL_PATTERNS and s.__doc__


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.NAME)
def test_every_example_routes_to_its_service(service):
    for url, expected_id in service.TESTS:
        assert for_url(url) is service, url
        if expected_id:
            assert service.video_id(url) == expected_id


def test_preferred_service_wins_only_when_it_accepts_the_url():
    lab_url = LabService.TESTS[0][0]
    assert for_url(lab_url, GenericService) is GenericService
    assert for_url("http://127.0.0.1/x.mp4", LabService) is GenericService
    assert for_url("ftp://example.org/x") is None


def test_the_plugins_sections_are_those_merged_into_the_settings_table():
    owned = {s.NAME: s.SETTINGS for s in SERVICES if s.SETTINGS is not None}
    assert owned == PLUGIN_SECTIONS
    assert {s.plugin for s in SETTINGS} == {"", *owned}


def test_by_name():
    assert by_name("LAB") is LabService
    with pytest.raises(UsageError, match="known services: lab, youtube, dailymotion, generic"):
        by_name("dailymotionx")


def test_generic_video_id_is_the_file_name():
    assert GenericService.video_id("http://127.0.0.1:8000/media/clip%20one.mp4?x=1") == "clip one.mp4"
