"""Geo lookup over a real MaxMind-format file written by mmdb-writer, and site networks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from pacsguard.cli import main
from pacsguard.errors import GeoDatabaseError
from pacsguard.monitor import UNKNOWN, MaxMindGeo, SiteGeo, SiteNetworks, site_geo


@pytest.fixture
def mmdb(tmp_path: Path) -> Path:
    """A small GeoLite2-Country-shaped database: two countries, one registered-only range."""
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True)
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB"}})
    writer.insert_network(IPSet(["89.160.20.0/24", "2001:db8:1::/48"]), {"country": {"iso_code": "SE"}})
    writer.insert_network(IPSet(["10.20.0.0/16"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(IPSet(["67.43.156.0/24"]), {"registered_country": {"iso_code": "BT"}})
    path = tmp_path / "country.mmdb"
    writer.to_db_file(str(path))
    return path


def test_countries_come_from_the_database(mmdb: Path) -> None:
    geo = MaxMindGeo(mmdb)
    assert geo.country("81.2.69.160") == "GB"
    assert geo.country("89.160.20.112") == "SE"
    assert geo.country("2001:db8:1::5") == "SE"
    assert geo.country("67.43.156.1") == "BT"


@pytest.mark.parametrize("ip", ["192.0.2.1", "not-an-ip", "", "999.1.1.1"])
def test_an_unknown_ip_is_its_own_value(mmdb: Path, ip: str) -> None:
    assert MaxMindGeo(mmdb).country(ip) == UNKNOWN


def test_site_networks_take_precedence_and_the_narrowest_wins(mmdb: Path) -> None:
    networks = SiteNetworks({"10.0.0.0/8": "hospital LAN", "10.20.30.0/24": "VPN"})
    geo = SiteGeo(networks, MaxMindGeo(mmdb))
    assert geo.country("10.20.30.4") == "VPN"
    assert geo.country("10.20.1.1") == "hospital LAN"  # the database says DE; the site knows better
    assert geo.country("81.2.69.160") == "GB"
    assert geo.country("192.0.2.1") == UNKNOWN
    assert SiteGeo(networks).country("81.2.69.160") == UNKNOWN


def test_site_geo_from_rule_settings(mmdb: Path) -> None:
    geo = site_geo({"172.16.0.0/12": "VPN"}, mmdb)
    assert (geo.country("172.16.1.1"), geo.country("81.2.69.1")) == ("VPN", "GB")
    assert site_geo({}, None).country("81.2.69.1") == UNKNOWN


def test_a_missing_geoip_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.mmdb"
    with pytest.raises(GeoDatabaseError, match=r"missing\.mmdb: not a usable GeoIP"):
        MaxMindGeo(path)


def test_a_corrupt_geoip_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mmdb"
    path.write_bytes(b"this is not a MaxMind database" * 10)
    with pytest.raises(GeoDatabaseError) as info:
        MaxMindGeo(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_monitor_check_opens_the_sites_geoip_file(
    mmdb: Path, make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(**{"rules__geo.yaml": f"geoip: {mmdb}\nnetworks:\n  10.0.0.0/8: hospital LAN\n"})
    assert main(["monitor", "check", "--site", str(site)]) == 0
    out = "".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "1sitenetworks;GeoIP" in out
    assert "country.mmdb" in out
