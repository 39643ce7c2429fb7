"""GEO_GET and ASN_GET over small MaxMind databases built by the tests (mmdb-writer), and GEOHASH_*."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from stellar_like import Context, StellarEvaluationError, evaluate
from stellar_like.functions.geo import clear_database_cache
from stellar_like.stores import LocalFileStore

CITY = {
    "city": {"geoname_id": 5391959, "names": {"en": "San Francisco"}},
    "country": {"iso_code": "US"},
    "postal": {"code": "94107"},
    "location": {"latitude": 37.7697, "longitude": -122.3933, "metro_code": 807},
}


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[dict[str, Path]]:
    city = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    city.insert_network(IPSet(["8.8.4.0/24"]), CITY)
    city.insert_network(IPSet(["2001:4860::/32"]), {"country": {"iso_code": "US"}})
    city_path = tmp_path / "GeoLite2-City.mmdb"
    city.to_db_file(str(city_path))
    asn = MMDBWriter(ip_version=4, database_type="GeoLite2-ASN")
    asn.insert_network(
        IPSet(["8.8.4.0/24"]), {"autonomous_system_number": 15169, "autonomous_system_organization": "Google LLC"}
    )
    asn_path = tmp_path / "GeoLite2-ASN.mmdb"
    asn.to_db_file(str(asn_path))
    clear_database_cache()
    yield {"geo": city_path, "asn": asn_path}
    clear_database_cache()


def run(expression: str, context: Context | None = None, **variables: Any) -> Any:
    return evaluate(expression, variables, context)


def test_geo_get_returns_metrons_fields_as_strings(databases: dict[str, Path]) -> None:
    context = Context(geo_database=str(databases["geo"]))
    assert run("GEO_GET('8.8.4.4')", context) == {
        "locID": "5391959",
        "country": "US",
        "city": "San Francisco",
        "postalCode": "94107",
        "dmaCode": "807",
        "latitude": "37.7697",
        "longitude": "-122.3933",
        "location_point": "37.7697,-122.3933",
    }
    assert run("GEO_GET('8.8.4.4', ['country'])", context) == "US"
    assert run("GEO_GET('8.8.4.4', ['country', 'city'])", context) == {"country": "US", "city": "San Francisco"}
    partial = run("GEO_GET('2001:4860::1')", context)
    assert partial["country"] == "US" and partial["city"] == "" and partial["location_point"] == ""


def test_addresses_that_cannot_be_looked_up(databases: dict[str, Path]) -> None:
    context = Context(geo_database=str(databases["geo"]))
    assert run("GEO_GET('1.1.1.1')", context) == {}  # not in the database
    assert run("GEO_GET('10.0.0.1')", context) == {}  # private
    assert run("GEO_GET('127.0.0.1')", context) == {}
    assert run("GEO_GET('not an ip')", context) == {}
    assert run("GEO_GET('1.1.1.1', ['country'])", context) is None
    assert run("GEO_GET(null)", context) is None
    assert run("GEO_GET('  ')", context) is None


def test_database_named_in_the_global_config_through_a_file_store(databases: dict[str, Path]) -> None:
    context = Context(global_config={"geo.hdfs.file": str(databases["geo"])}, hdfs=LocalFileStore())
    assert run("GEO_GET('8.8.4.4', ['city'])", context) == "San Francisco"
    local = Context(global_config={"asn.hdfs.file": str(databases["asn"])})
    assert run("ASN_GET('8.8.4.4', ['autonomous_system_number'])", local) == 15169


def test_asn_get(databases: dict[str, Path]) -> None:
    context = Context(asn_database=str(databases["asn"]))
    assert run("ASN_GET('8.8.4.4')", context) == {
        "autonomous_system_number": 15169,
        "autonomous_system_organization": "Google LLC",
        "network": "8.8.4.4",
    }
    assert run("ASN_GET('8.8.4.4', ['autonomous_system_organization', 'network'])", context) == {
        "autonomous_system_organization": "Google LLC",
        "network": "8.8.4.4",
    }
    assert run("ASN_GET('192.168.1.1')", context) == {}


def test_missing_or_bad_database_is_a_clear_error(tmp_path: Path) -> None:
    clear_database_cache()
    with pytest.raises(StellarEvaluationError, match="GEO_GET: no MaxMind database is configured"):
        run("GEO_GET('8.8.4.4')")
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(StellarEvaluationError, match="cannot open the MaxMind database"):
        run("ASN_GET('8.8.4.4')", Context(asn_database=str(bad)))


# ---- geohashes ----------------------------------------------------------------------------------------------


def test_geohash_round_trip() -> None:
    assert run("GEOHASH_FROM_LATLONG(37.7749, -122.4194)") == "9q8yyk8ytpxr"
    assert run("GEOHASH_FROM_LATLONG(37.7749, -122.4194, 6)") == "9q8yyk"
    assert run("GEOHASH_FROM_LATLONG('37.7749', '-122.4194', 3)") == "9q8"
    point = run("GEOHASH_TO_LATLONG('9q8yyk8ytpxr')")
    assert point["latitude"] == pytest.approx(37.7749, abs=1e-6)
    assert point["longitude"] == pytest.approx(-122.4194, abs=1e-6)
    assert run("GEOHASH_FROM_LOC({'latitude': '37.7749', 'longitude': '-122.4194'}, 5)") == "9q8yy"
    assert run("GEOHASH_FROM_LOC({'latitude': '', 'longitude': ''})") is None
    assert run("GEOHASH_FROM_LATLONG(null, 1)") is None
    assert run("GEOHASH_TO_LATLONG(null)") is None
    with pytest.raises(StellarEvaluationError, match="GEOHASH_TO_LATLONG: argument 1 'ailo' is not a geohash"):
        run("GEOHASH_TO_LATLONG('ailo')")
    with pytest.raises(StellarEvaluationError, match="GEOHASH_FROM_LATLONG: argument 3 13 is not a geohash precision"):
        run("GEOHASH_FROM_LATLONG(1, 1, 13)")


def test_geohash_of_a_geo_get_result(databases: dict[str, Path]) -> None:
    context = Context(geo_database=str(databases["geo"]))
    assert run("GEOHASH_FROM_LOC(GEO_GET('8.8.4.4'), 7)", context) == run("GEOHASH_FROM_LATLONG(37.7697, -122.3933, 7)")


SF = (37.7749, -122.4194)
NYC = (40.7128, -74.0060)
LONDON = (51.5074, -0.1278)


def test_geohash_distances() -> None:
    sf, nyc = (run("GEOHASH_FROM_LATLONG(a, b)", a=a, b=b) for a, b in (SF, NYC))
    haversine = run("GEOHASH_DIST(a, b)", a=sf, b=nyc)
    assert haversine == pytest.approx(4129.1, abs=2.0)
    for strategy in ("LAW_OF_COSINES", "VICENTY", "HAVERSINE"):
        assert run("GEOHASH_DIST(a, b, s)", a=sf, b=nyc, s=strategy) == pytest.approx(haversine, rel=1e-6)
    assert run("GEOHASH_DIST(a, a)", a=sf) == 0.0
    assert run("GEOHASH_DIST(a, null)", a=sf) is None
    with pytest.raises(StellarEvaluationError, match="GEOHASH_DIST: argument 3 'EUCLID' is not a distance strategy"):
        run("GEOHASH_DIST(a, a, 'EUCLID')", a=sf)


def test_geohash_max_dist_and_centroid() -> None:
    hashes = [run("GEOHASH_FROM_LATLONG(a, b)", a=a, b=b) for a, b in (SF, NYC, LONDON)]
    assert run("GEOHASH_MAX_DIST(h)", h=hashes) == pytest.approx(run("GEOHASH_DIST(a, b)", a=hashes[0], b=hashes[2]))
    assert run("GEOHASH_MAX_DIST(h)", h=hashes[:1]) == 0.0
    assert math.isnan(run("GEOHASH_MAX_DIST([])"))
    centroid = run("GEOHASH_TO_LATLONG(GEOHASH_CENTROID([a, a]))", a=hashes[0])
    assert centroid["latitude"] == pytest.approx(SF[0], abs=1e-5)
    midpoint = run("GEOHASH_TO_LATLONG(GEOHASH_CENTROID([a, b]))", a=hashes[0], b=hashes[1])
    assert 37.7 < midpoint["latitude"] < 42 and -122.4 < midpoint["longitude"] < -74  # the great-circle midpoint
    weighted = run("GEOHASH_TO_LATLONG(GEOHASH_CENTROID(m))", m={hashes[0]: 1, hashes[1]: 1000})
    assert weighted["latitude"] == pytest.approx(NYC[0], abs=0.1)
    assert len(run("GEOHASH_CENTROID(h, 4)", h=hashes)) == 4
    assert run("GEOHASH_CENTROID([])") is None


EMPIRE_STATE = (40.748570, -73.985752)
MOSCONE_CENTER = (37.782891, -122.404166)
JUTLAND = (57.64911, 10.40740)


def test_known_places() -> None:
    hashes = {
        name: run("GEOHASH_FROM_LATLONG(a, b)", a=a, b=b)
        for name, (a, b) in {"empire": EMPIRE_STATE, "moscone": MOSCONE_CENTER, "jutland": JUTLAND}.items()
    }
    assert hashes["jutland"] == "u4pruydqmvpb"
    assert run("GEOHASH_FROM_LATLONG(a, b, 10)", a=JUTLAND[0], b=JUTLAND[1]) == "u4pruydqmv"
    assert run("GEOHASH_FROM_LOC({'latitude': '57.64911', 'longitude': '10.4074'}, 6)") == "u4pruy"
    # New York to San Francisco is about 4128 km by every strategy
    for strategy in ("HAVERSINE", "LAW_OF_COSINES", "VICENTY"):
        assert run("GEOHASH_DIST(a, b, s)", a=hashes["empire"], b=hashes["moscone"], s=strategy) == pytest.approx(
            4128, abs=1
        )
    assert run("GEOHASH_MAX_DIST([a, b, c, null])", a=hashes["jutland"], b=hashes["moscone"], c=hashes["empire"]) == (
        pytest.approx(8528, abs=1)
    )
    midpoint = run("GEOHASH_TO_LATLONG(GEOHASH_CENTROID([a, b]))", a=hashes["empire"], b=hashes["moscone"])
    assert midpoint["latitude"] == pytest.approx(41.86921, abs=1e-3)
    assert midpoint["longitude"] == pytest.approx(-98.740087, abs=1e-3)
    assert run("GEOHASH_TO_LATLONG('')") == {"latitude": 0.0, "longitude": 0.0}
    assert run("GEOHASH_TO_LATLONG(GEOHASH_CENTROID([]))") is None
