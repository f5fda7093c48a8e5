"""Where an IP address is: site-named networks first, then a MaxMind-format database.

An address that neither knows is the value ``"unknown"``, never an error. The engine
uses a ``GeoLookup`` to fill ``actor.country`` when an event lacks it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import maxminddb

from pacsguard.errors import GeoDatabaseError

__all__ = ["UNKNOWN", "GeoLookup", "MaxMindGeo", "SiteGeo", "SiteNetworks", "site_geo"]

UNKNOWN = "unknown"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class GeoLookup(Protocol):
    """Names the place of an IP address: a country code, a site network name or ``"unknown"``."""

    def country(self, ip: str) -> str: ...


class SiteNetworks:
    """Site-named networks (CIDR -> name, e.g. ``10.0.0.0/8: hospital LAN``); the most specific wins."""

    def __init__(self, networks: Mapping[str, str]) -> None:
        parsed = [(ipaddress.ip_network(cidr, strict=False), name) for cidr, name in networks.items()]
        self._networks: list[tuple[Network, str]] = sorted(parsed, key=lambda item: -item[0].prefixlen)

    def name(self, ip: str) -> str | None:
        """The name of the narrowest site network holding ``ip``, or ``None``."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network, name in self._networks:
            if address.version == network.version and address in network:
                return name
        return None

    def country(self, ip: str) -> str:
        return self.name(ip) or UNKNOWN


class MaxMindGeo:
    """Country ISO codes from a MaxMind-format (``.mmdb``) file, e.g. GeoLite2-Country.

    Raises ``GeoDatabaseError`` naming the file when it cannot be opened or is not a
    MaxMind database.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoDatabaseError(path, str(exc)) from exc

    def country(self, ip: str) -> str:
        try:
            record = self._reader.get(ip)
        except (ValueError, maxminddb.InvalidDatabaseError):
            return UNKNOWN
        return _country_code(record) or UNKNOWN

    def close(self) -> None:
        self._reader.close()


def _country_code(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    for section in ("country", "registered_country"):
        part = record.get(section)
        if isinstance(part, dict) and isinstance(part.get("iso_code"), str):
            return str(part["iso_code"])
    code = record.get("country_code")
    return code if isinstance(code, str) else None


class SiteGeo:
    """Site networks take precedence; then the database, if any; else ``"unknown"``."""

    def __init__(self, networks: SiteNetworks, database: GeoLookup | None = None) -> None:
        self.networks = networks
        self.database = database
        self._cache: dict[str, str] = {}

    def country(self, ip: str) -> str:
        found = self._cache.get(ip)
        if found is None:
            found = self.networks.name(ip) or (self.database.country(ip) if self.database else UNKNOWN)
            if len(self._cache) >= 65_536:
                self._cache.clear()
            self._cache[ip] = found
        return found


def site_geo(networks: Mapping[str, str], geoip: Path | None) -> SiteGeo:
    """The site's lookup: its named networks, then its GeoIP file if it names one.

    Raises ``GeoDatabaseError`` naming the file if it is missing or not a MaxMind database.
    """
    return SiteGeo(SiteNetworks(networks), MaxMindGeo(geoip) if geoip is not None else None)
