"""The static, ordered registry of service plugins (specific first, generic last); no discovery, so frozen builds
see them all. A plugin's own settings are its section (``Service.SETTINGS``), merged into the one settings table
(pytomo/settings.py ``PLUGIN_SECTIONS``, under the plugin's name)."""

from __future__ import annotations

from pytomo.errors import UsageError
from pytomo.services.base import Service, ServiceContext
from pytomo.services.dailymotion import DailymotionService
from pytomo.services.generic import GenericService
from pytomo.services.lab import LabService
from pytomo.services.youtube import YouTubeService

SERVICES: tuple[type[Service], ...] = (LabService, YouTubeService, DailymotionService, GenericService)

__all__ = ["SERVICES", "Service", "ServiceContext", "by_name", "for_url"]


def by_name(name: str) -> type[Service]:
    """The service called ``name``; UsageError listing the known ones otherwise."""
    for service in SERVICES:
        if service.NAME == name.lower():
            return service
    raise UsageError(f"unknown service {name!r}; known services: {', '.join(s.NAME for s in SERVICES)}")


def for_url(url: str, preferred: type[Service] | None = None) -> type[Service] | None:
    """The service for a page URL: the preferred one if it accepts it, else the first that does."""
    if preferred is not None and preferred.suitable(url):
        return preferred
    for service in SERVICES:
        if service.suitable(url):
            return service
    return None
