"""Geography functions: GEO_GET, ASN_GET (MaxMind databases) and GEOHASH_*.

GEO_GET and ASN_GET read MaxMind-format databases (GeoLite2/GeoIP2 City and ASN) with the
``maxminddb`` reader. The database is named by the evaluation context: a ``geo_database`` /
``asn_database`` service (a path or an open ``maxminddb`` reader), or else Metron's global
configuration keys ``geo.hdfs.file`` / ``asn.hdfs.file`` in the context's ``global_config``
service, read through the context's ``hdfs`` file store when there is one and from the local file
system otherwise. Databases are opened once and kept.

Addresses that cannot be looked up (not an IP address; private, loopback, multicast or
unspecified) give an empty result, as in Metron. GEO_GET's values are strings, as Metron's are.

Geohashes are encoded and decoded with ``pygeohash``; distances use the spherical formulas of
Metron's strategies on the Earth's mean radius (6371.0087714 km).
"""

from __future__ import annotations

import io
import ipaddress
import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pygeohash

from stellar_like.context import Context
from stellar_like.errors import StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import java_str
from stellar_like.stores import FileStore, FileStoreError

EARTH_MEAN_RADIUS_KM = 6371.0087714

_readers: dict[tuple[str, str], Any] = {}
_readers_lock = threading.Lock()


def _open_reader(context: Context | None, service: str, config_key: str) -> Any:
    ctx = context if context is not None else Context()
    given = ctx.service(service)
    if given is not None and not isinstance(given, (str, Path)):
        return given  # an open reader
    source = "local"
    path = given
    if path is None:
        config = ctx.service("global_config") or {}
        path = config.get(config_key) if isinstance(config, Mapping) else None
        if path is not None and isinstance(ctx.service("hdfs"), FileStore):
            source = "hdfs"
    if path is None:
        raise StellarEvaluationError(
            f"no MaxMind database is configured: give the context a '{service}' service "
            f"or set '{config_key}' in its global_config"
        )
    key = (source, str(path))
    import maxminddb  # imported on first use: most expressions never look up an address

    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            try:
                if source == "hdfs":
                    data = ctx.service("hdfs").read(str(path))
                    reader = maxminddb.open_database(io.BytesIO(data), maxminddb.MODE_FD)
                else:
                    reader = maxminddb.open_database(str(path))
            except (OSError, ValueError, FileStoreError, maxminddb.InvalidDatabaseError) as exc:
                raise StellarEvaluationError(f"cannot open the MaxMind database {path}: {exc}") from None
            _readers[key] = reader
    return reader


def clear_database_cache() -> None:
    """Forget the opened databases (after a database file was replaced)."""
    with _readers_lock:
        for reader in _readers.values():
            try:
                reader.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        _readers.clear()


def _eligible(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    return not (address.is_private or address.is_loopback or address.is_multicast or address.is_unspecified)


def _lookup(reader: Any, ip: str) -> dict[str, Any] | None:
    import maxminddb

    try:
        record = reader.get(ip.strip())
    except (ValueError, maxminddb.InvalidDatabaseError):
        return None
    return record if isinstance(record, dict) else None


def _text(value: Any) -> str:
    return "" if value is None else java_str(value)


def _geo_record(record: Mapping[str, Any]) -> dict[str, str]:
    city = record.get("city") or {}
    country = record.get("country") or {}
    postal = record.get("postal") or {}
    location = record.get("location") or {}
    latitude, longitude = location.get("latitude"), location.get("longitude")
    lat_text = _text(float(latitude)) if latitude is not None else ""
    lon_text = _text(float(longitude)) if longitude is not None else ""
    return {
        "locID": _text(city.get("geoname_id")),
        "country": _text(country.get("iso_code")),
        "city": _text((city.get("names") or {}).get("en")),
        "postalCode": _text(postal.get("code")),
        "dmaCode": _text(location.get("metro_code")),
        "latitude": lat_text,
        "longitude": lon_text,
        "location_point": f"{lat_text},{lon_text}" if lat_text and lon_text else "",
    }


def _select(result: dict[str, Any] | None, fields: Any) -> Any:
    if fields is None:
        return {} if result is None else result
    names = [A.string(2, f) for f in A.sequence(2, fields)]
    if result is None:
        return None
    if len(names) == 1:
        return result.get(names[0])
    return {name: result.get(name) for name in names}


@stellar_function(
    "GEO_GET",
    description="Looks up an IP address in the MaxMind city database and returns geographic information about it.",
    params=[
        "ip - The IP address to look up",
        "fields? - A list of fields to return: locID, country, city, postalCode, dmaCode, latitude, longitude, "
        "location_point",
    ],
    returns="A map of every field (empty if the address is not found); with one field asked for, its value; "
    "with several, a map of them; null for a null address or, with fields, an address not found",
    context=True,
    pure=False,
)
def geo_get(context: Context, ip: Any, fields: Any = None) -> Any:
    if ip is None or (isinstance(ip, str) and not ip.strip()):
        return None
    text = A.string(1, ip)
    result = None
    if _eligible(text):
        record = _lookup(_open_reader(context, "geo_database", "geo.hdfs.file"), text)
        result = None if record is None else _geo_record(record)
    return _select(result, fields)


@stellar_function(
    "ASN_GET",
    description="Looks up an IP address in the MaxMind ASN database and returns its autonomous system.",
    params=[
        "ip - The IP address to look up",
        "fields? - A list of fields to return: autonomous_system_organization, autonomous_system_number, network",
    ],
    returns="A map of every field (empty if the address is not found); with one field asked for, its value; "
    "with several, a map of them",
    context=True,
    pure=False,
)
def asn_get(context: Context, ip: Any, fields: Any = None) -> Any:
    if ip is None or (isinstance(ip, str) and not ip.strip()):
        return None
    text = A.string(1, ip)
    result = None
    if _eligible(text):
        record = _lookup(_open_reader(context, "asn_database", "asn.hdfs.file"), text)
        if record is not None:
            result = {
                "autonomous_system_number": record.get("autonomous_system_number"),
                "autonomous_system_organization": _text(record.get("autonomous_system_organization")),
                "network": text.strip(),
            }
    return _select(result, fields)


# ---- geohashes ------------------------------------------------------------------------------------------


def _point(index: int, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    text = A.string(index, value)
    if text == "":
        return 0.0, 0.0  # the empty geohash is the whole world, centred on (0, 0), as in Metron
    try:
        decoded = pygeohash.decode(text)
    except ValueError:
        raise argument_error(index, value, "is not a geohash") from None
    return float(decoded.latitude), float(decoded.longitude)


def _precision(index: int, value: Any) -> int:
    if value is None:
        return 12
    precision = A.to_integer(index, value)
    if precision is None or not 1 <= precision <= 12:
        raise argument_error(index, value, "is not a geohash precision between 1 and 12")
    return precision


def _encode(latitude: float, longitude: float, precision: int, index: int, raw: Any) -> str:
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise argument_error(index, raw, "is not a latitude/longitude on the globe")
    return str(pygeohash.encode(latitude, longitude, precision=precision))


@stellar_function(
    "GEOHASH_TO_LATLONG",
    description="Computes the latitude and longitude of a geohash (the centre of its cell).",
    params=["hash - The geohash"],
    returns="A map with the keys latitude and longitude, or null for null input",
)
def geohash_to_latlong(value: Any) -> dict[str, float] | None:
    point = _point(1, value)
    if point is None:
        return None
    return {"latitude": point[0], "longitude": point[1]}


@stellar_function(
    "GEOHASH_FROM_LATLONG",
    description="Computes the geohash of a latitude and longitude.",
    params=[
        "latitude - The latitude",
        "longitude - The longitude",
        "character_precision? - The number of characters of the hash; default 12",
    ],
    returns="The geohash, or null if the latitude or longitude is null",
)
def geohash_from_latlong(latitude: Any, longitude: Any, precision: Any = None) -> str | None:
    if latitude is None or longitude is None:
        return None
    lat, lon = A.to_float(1, latitude), A.to_float(2, longitude)
    assert lat is not None and lon is not None
    return _encode(lat, lon, _precision(3, precision), 1, [latitude, longitude])


@stellar_function(
    "GEOHASH_FROM_LOC",
    description="Computes the geohash of a location map such as GEO_GET returns (keys latitude and longitude).",
    params=["map - A map with latitude and longitude", "character_precision? - The number of characters; default 12"],
    returns="The geohash, or null if the map is null or has no usable latitude and longitude",
)
def geohash_from_loc(location: Any, precision: Any = None) -> str | None:
    if location is None:
        return None
    values = A.mapping(1, location)
    lat_raw, lon_raw = values.get("latitude"), values.get("longitude")
    try:
        lat = float(lat_raw) if lat_raw not in (None, "") else None
        lon = float(lon_raw) if lon_raw not in (None, "") else None
    except (TypeError, ValueError):
        return None
    if lat is None or lon is None:
        return None
    return _encode(lat, lon, _precision(2, precision), 1, location)


def _haversine(p1: tuple[float, float], p2: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*p1, *p2))
    if lat1 == lat2 and lon1 == lon2:
        return 0.0
    h = math.sin((lat1 - lat2) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon1 - lon2) / 2) ** 2
    h = min(h, 1.0)
    return 2 * math.atan2(math.sqrt(h), math.sqrt(1 - h))


def _law_of_cosines(p1: tuple[float, float], p2: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*p1, *p2))
    if lat1 == lat2 and lon1 == lon2:
        return 0.0
    cosine = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return math.acos(max(-1.0, min(1.0, cosine)))


def _vincenty(p1: tuple[float, float], p2: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*p1, *p2))
    delta = lon2 - lon1
    a = math.cos(lat2) * math.sin(delta)
    b = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(delta)
    c = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(delta)
    return math.atan2(math.sqrt(a * a + b * b), c)


# The great-circle formulas are written out: each is one line, and the geodesy libraries compute
# ellipsoidal distances, which differ from Metron's spherical results.
DISTANCE_STRATEGIES = {
    "HAVERSINE": _haversine,
    "LAW_OF_COSINES": _law_of_cosines,
    "VICENTY": _vincenty,
    "VINCENTY": _vincenty,
}


def _strategy(index: int, value: Any) -> Any:
    if value is None:
        return _haversine
    name = A.string(index, value).upper()
    if name not in DISTANCE_STRATEGIES:
        raise argument_error(index, value, "is not a distance strategy (HAVERSINE, LAW_OF_COSINES or VICENTY)")
    return DISTANCE_STRATEGIES[name]


@stellar_function(
    "GEOHASH_DIST",
    description="Computes the great-circle distance between two geohashes.",
    params=[
        "hash1 - The first location as a geohash",
        "hash2 - The second location as a geohash",
        "strategy? - HAVERSINE (the default), LAW_OF_COSINES or VICENTY",
    ],
    returns="The distance in kilometres, or null if either hash is null",
)
def geohash_dist(hash1: Any, hash2: Any, strategy: Any = None) -> float | None:
    measure = _strategy(3, strategy)
    p1, p2 = _point(1, hash1), _point(2, hash2)
    if p1 is None or p2 is None:
        return None
    return EARTH_MEAN_RADIUS_KM * measure(p1, p2)


@stellar_function(
    "GEOHASH_MAX_DIST",
    description="Computes the largest distance between any two of a collection of geohashes.",
    params=["hashes - A list of geohashes", "strategy? - HAVERSINE (the default), LAW_OF_COSINES or VICENTY"],
    returns="The maximum distance in kilometres (0.0 for one hash, NaN for none), or null for null input",
)
def geohash_max_dist(hashes: Any, strategy: Any = None) -> float | None:
    measure = _strategy(2, strategy)
    if hashes is None:
        return None
    points = [p for p in (_point(1, h) for h in _hash_items(hashes)) if p is not None]
    best = math.nan
    for i, first in enumerate(points):
        for second in points[: i + 1]:
            distance = EARTH_MEAN_RADIUS_KM * measure(first, second)
            if math.isnan(best) or distance > best:
                best = distance
    return best


def _hash_items(value: Any) -> Iterable[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return value
    raise argument_error(1, value, "is not a list of geohashes")


@stellar_function(
    "GEOHASH_CENTROID",
    description="Computes the centroid (geographic midpoint) of geohashes, optionally weighted.",
    params=[
        "hashes - A list of geohashes, or a map of geohashes to numeric weights",
        "character_precision? - The number of characters of the result; default 12",
    ],
    returns="The geohash of the centroid, or null if there are no points",
)
def geohash_centroid(hashes: Any, precision: Any = None) -> str | None:
    digits = _precision(2, precision)
    if hashes is None:
        return None
    if isinstance(hashes, Mapping):
        weighted = []
        for key, weight in hashes.items():
            point = _point(1, key)
            if point is not None:
                factor = A.to_float(1, weight)
                if factor is None:
                    raise argument_error(1, hashes, f"has a null weight for {key!r}")
                weighted.append((point, factor))
    else:
        weighted = [(p, 1.0) for p in (_point(1, h) for h in _hash_items(hashes)) if p is not None]
    if not weighted:
        return None
    x = y = z = total = 0.0
    for (lat, lon), weight in weighted:
        lat_r, lon_r = math.radians(lat), math.radians(lon)
        x += math.cos(lat_r) * math.cos(lon_r) * weight
        y += math.cos(lat_r) * math.sin(lon_r) * weight
        z += math.sin(lat_r) * weight
        total += weight
    if total == 0:
        return None
    x, y, z = x / total, y / total, z / total
    longitude = math.degrees(math.atan2(y, x))
    latitude = math.degrees(math.atan2(z, math.sqrt(x * x + y * y)))
    return _encode(latitude, longitude, digits, 1, hashes)
