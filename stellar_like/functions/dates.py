"""Date functions: TO_EPOCH_TIMESTAMP, DATE_FORMAT, IS_DATE, and the calendar fields of an epoch time.

Times are epoch milliseconds, as in Stellar. Formats are Java ``SimpleDateFormat`` patterns
(``yyyy-MM-dd HH:mm:ss.SSS``, ``'T'`` for quoted text, ``Z``/``X``/``z`` for zones), translated by a
small pattern reader here, not passed to ``strptime``. As with ``SimpleDateFormat``, parsing reads
the pattern from the start of the text and ignores anything after it. Text without a zone is read
in the ``timezone`` argument, default UTC.

The calendar-field functions work in UTC with Java's US calendar rules: DAY_OF_WEEK counts Sunday
as 1, MONTH is 0-based (January is 0), and week 1 of a year is the week (Sunday to Saturday)
containing January 1.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stellar_like.errors import StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import is_number, java_str

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Zone abbreviations SimpleDateFormat understands that the tz database does not name as zones.
_ABBREVIATIONS = {
    "UTC": timezone.utc,
    "GMT": timezone.utc,
    "Z": timezone.utc,
    "UT": timezone.utc,
    "EST": timezone(timedelta(hours=-5), "EST"),
    "EDT": timezone(timedelta(hours=-4), "EDT"),
    "CST": timezone(timedelta(hours=-6), "CST"),
    "CDT": timezone(timedelta(hours=-5), "CDT"),
    "MST": timezone(timedelta(hours=-7), "MST"),
    "MDT": timezone(timedelta(hours=-6), "MDT"),
    "PST": timezone(timedelta(hours=-8), "PST"),
    "PDT": timezone(timedelta(hours=-7), "PDT"),
    "CET": timezone(timedelta(hours=1), "CET"),
    "CEST": timezone(timedelta(hours=2), "CEST"),
    "BST": timezone(timedelta(hours=1), "BST"),
    "IST": timezone(timedelta(hours=5, minutes=30), "IST"),
    "JST": timezone(timedelta(hours=9), "JST"),
}
_OFFSET = re.compile(r"(?:GMT|UTC)?([+-])(\d{1,2})(?::?(\d{2}))?\Z")


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo | None:
    key = name.strip()
    if key.upper() in _ABBREVIATIONS:
        return _ABBREVIATIONS[key.upper()]
    match = _OFFSET.match(key)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta >= timedelta(hours=24):
            return None
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _zone_arg(index: int, value: Any) -> tzinfo:
    if value is None:
        return timezone.utc
    zone = _zone(A.string(index, value))
    if zone is None:
        raise argument_error(index, value, "is not a known time zone")
    return zone


def _datetime(index: int, value: Any, zone: tzinfo = timezone.utc) -> datetime:
    """An epoch-milliseconds argument as an aware datetime."""
    if isinstance(value, str):
        millis = A.number(index, value)
    elif is_number(value):
        millis = value
    else:
        raise argument_error(index, value, "is not an epoch timestamp in milliseconds")
    try:
        return (_EPOCH + timedelta(milliseconds=millis)).astimezone(zone)
    except (OverflowError, ValueError):
        raise argument_error(index, value, "is out of the supported date range") from None


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# ---- Java pattern reading ------------------------------------------------------------------------

_PATTERN_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.DOTALL)
_NUMERIC = set("yMdDHhKkmsSuwWF")


@dataclass(frozen=True)
class _Field:
    letter: str  # "" for literal text
    count: int
    text: str = ""


@functools.lru_cache(maxsize=256)
def _read_pattern(pattern: str) -> tuple[_Field, ...]:
    fields: list[_Field] = []
    for match in _PATTERN_TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            text = "'" if token == "''" else token[1:-1].replace("''", "'")
            fields.append(_Field("", 0, text))
        elif token[0].isalpha():
            if token[0] not in "GyMLdDEuaHhKkmsSzZXwWF":
                raise ValueError(f"illegal pattern character {token[0]!r}")
            fields.append(_Field(token[0], len(token)))
        else:
            fields.append(_Field("", 0, token))
    return tuple(fields)


def _pattern(index: int, value: Any) -> tuple[_Field, ...]:
    text = A.string(index, value)
    try:
        return _read_pattern(text)
    except ValueError as exc:
        raise argument_error(index, text, f"is not a valid date format ({exc})") from None


# ---- formatting ----------------------------------------------------------------------------------


def _sunday_based(weekday: int) -> int:
    """Python's Monday=0 weekday as Java's Sunday=1 .. Saturday=7."""
    return (weekday + 1) % 7 + 1


def _week_of_year(day: date) -> int:
    def first_week_start(year: int) -> date:
        jan1 = date(year, 1, 1)
        return jan1 - timedelta(days=_sunday_based(jan1.weekday()) - 1)

    if day.year < 9999 and day >= first_week_start(day.year + 1):
        return 1
    return (day - first_week_start(day.year)).days // 7 + 1


def _week_of_month(day: date) -> int:
    offset = _sunday_based(day.replace(day=1).weekday()) - 1
    return (day.day - 1 + offset) // 7 + 1


def _offset_text(moment: datetime, style: str, count: int) -> str:
    offset = moment.utcoffset() or timedelta(0)
    if style == "X" and offset == timedelta(0):
        return "Z"
    total = int(offset.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    if style == "X":
        if count == 1:
            return f"{sign}{hours:02d}"
        if count == 2:
            return f"{sign}{hours:02d}{minutes:02d}"
        return f"{sign}{hours:02d}:{minutes:02d}"
    return f"{sign}{hours:02d}{minutes:02d}"


def _format(fields: tuple[_Field, ...], moment: datetime) -> str:
    out: list[str] = []
    for field in fields:
        letter, n = field.letter, field.count
        if not letter:
            out.append(field.text)
        elif letter == "G":
            out.append("AD" if moment.year > 0 else "BC")
        elif letter == "y":
            out.append(f"{moment.year % 100:02d}" if n == 2 else str(moment.year).zfill(n))
        elif letter in ("M", "L"):
            if n >= 4:
                out.append(_MONTHS[moment.month - 1])
            elif n == 3:
                out.append(_MONTHS[moment.month - 1][:3])
            else:
                out.append(str(moment.month).zfill(n))
        elif letter == "d":
            out.append(str(moment.day).zfill(n))
        elif letter == "D":
            out.append(str(moment.timetuple().tm_yday).zfill(n))
        elif letter == "E":
            name = _DAYS[moment.weekday()]
            out.append(name if n >= 4 else name[:3])
        elif letter == "u":
            out.append(str(moment.isoweekday()).zfill(n))
        elif letter == "a":
            out.append("AM" if moment.hour < 12 else "PM")
        elif letter == "H":
            out.append(str(moment.hour).zfill(n))
        elif letter == "k":
            out.append(str(moment.hour or 24).zfill(n))
        elif letter == "K":
            out.append(str(moment.hour % 12).zfill(n))
        elif letter == "h":
            out.append(str(moment.hour % 12 or 12).zfill(n))
        elif letter == "m":
            out.append(str(moment.minute).zfill(n))
        elif letter == "s":
            out.append(str(moment.second).zfill(n))
        elif letter == "S":
            out.append(str(moment.microsecond // 1000).zfill(n))
        elif letter == "z":
            name = moment.tzname() or "UTC"
            if n >= 4 and isinstance(moment.tzinfo, ZoneInfo):
                name = moment.tzinfo.key
            out.append(name)
        elif letter in ("Z", "X"):
            out.append(_offset_text(moment, letter, n))
        elif letter == "w":
            out.append(str(_week_of_year(moment.date())).zfill(n))
        elif letter == "W":
            out.append(str(_week_of_month(moment.date())).zfill(n))
        elif letter == "F":
            out.append(str((moment.day - 1) // 7 + 1).zfill(n))
    return "".join(out)


# ---- parsing -------------------------------------------------------------------------------------

_WIDTH = {
    "y": 9,
    "M": 2,
    "L": 2,
    "d": 2,
    "D": 3,
    "H": 2,
    "h": 2,
    "K": 2,
    "k": 2,
    "m": 2,
    "s": 2,
    "S": 9,
    "u": 1,
    "w": 2,
    "W": 1,
    "F": 1,
}


@functools.lru_cache(maxsize=256)
def _parser(fields: tuple[_Field, ...]) -> re.Pattern[str]:
    parts: list[str] = []
    for i, field in enumerate(fields):
        letter, n = field.letter, field.count
        group = f"f{i}"
        if not letter:
            parts.append(re.escape(field.text))
            continue
        following = fields[i + 1] if i + 1 < len(fields) else None
        adjacent = (
            following is not None
            and following.letter in _NUMERIC
            and not (following.letter in "ML" and following.count >= 3)
        )
        if letter in ("M", "L") and n >= 3:
            names = "|".join(sorted({m for name in _MONTHS for m in (name, name[:3])}, key=len, reverse=True))
            parts.append(f"(?P<{group}>{names})")
        elif letter == "E":
            names = "|".join(sorted({d for name in _DAYS for d in (name, name[:3])}, key=len, reverse=True))
            parts.append(f"(?P<{group}>{names})")
        elif letter == "G":
            parts.append(f"(?P<{group}>AD|BC)")
        elif letter == "a":
            parts.append(f"(?P<{group}>AM|PM|am|pm)")
        elif letter == "z":
            parts.append(f"(?P<{group}>[A-Za-z][A-Za-z0-9/_]*(?:[+-]\\d{{1,2}}(?::?\\d{{2}})?)?)")
        elif letter == "Z":
            parts.append(f"(?P<{group}>[+-]\\d{{4}}|Z)")
        elif letter == "X":
            parts.append(f"(?P<{group}>Z|[+-]\\d{{2}}(?::?\\d{{2}})?)")
        elif letter == "y" and n == 2:
            parts.append(f"(?P<{group}>\\d{{2}})")
        elif adjacent:
            parts.append(f"(?P<{group}>\\d{{{n}}})")
        else:
            parts.append(f"(?P<{group}>\\d{{1,{max(n, _WIDTH[letter])}}})")
    return re.compile("".join(parts), re.IGNORECASE)


def _parse(fields: tuple[_Field, ...], text: str, default_zone: tzinfo) -> datetime | None:
    match = _parser(fields).match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, micros = 1970, 1, 1, 0, 0, 0, 0
    day_of_year: int | None = None
    pm: bool | None = None
    twelve_hour: int | None = None
    zone: tzinfo | None = None
    for i, field in enumerate(fields):
        if not field.letter:
            continue
        raw = match.group(f"f{i}")
        letter, n = field.letter, field.count
        if letter == "y":
            year = int(raw)
            if n == 2:
                year += 2000 if year < 70 else 1900
        elif letter in ("M", "L"):
            month = (
                int(raw)
                if n < 3
                else next(k + 1 for k, name in enumerate(_MONTHS) if name.lower().startswith(raw.lower()[:3]))
            )
        elif letter == "d":
            day = int(raw)
        elif letter == "D":
            day_of_year = int(raw)
        elif letter in ("H", "k"):
            hour = int(raw) % 24
        elif letter in ("h", "K"):
            twelve_hour = int(raw) % 12
        elif letter == "a":
            pm = raw.upper() == "PM"
        elif letter == "m":
            minute = int(raw)
        elif letter == "s":
            second = int(raw)
        elif letter == "S":
            micros = int(raw) * 1000  # SimpleDateFormat reads S as a count of milliseconds
        elif letter in ("z", "Z", "X"):
            zone = _zone(raw)
            if zone is None:
                return None
    if twelve_hour is not None:
        hour = twelve_hour + (12 if pm else 0)
    elif pm and hour < 12:
        hour += 12
    try:
        if day_of_year is not None:
            moment = datetime(year, 1, 1) + timedelta(days=day_of_year - 1)
        else:
            moment = datetime(year, month, day)
        moment = moment + timedelta(hours=hour, minutes=minute, seconds=second, microseconds=micros)
    except (ValueError, OverflowError):
        return None
    return moment.replace(tzinfo=zone or default_zone)


# ---- functions -----------------------------------------------------------------------------------


@stellar_function(
    "TO_EPOCH_TIMESTAMP",
    description="Returns the epoch timestamp (milliseconds) of a date-time string in the given Java date format. "
    "Text without a zone is read in the given time zone (default UTC).",
    params=[
        "dateTime - The date-time string",
        "format - The Java SimpleDateFormat pattern, e.g. 'yyyy-MM-dd HH:mm:ss'",
        "timezone? - The time zone, e.g. 'UTC' or 'America/New_York'",
    ],
    returns="The epoch timestamp in milliseconds; null for null input or text that does not match the format",
)
def to_epoch_timestamp(value: Any, fmt: Any, zone: Any = None) -> int | None:
    if value is None or fmt is None:
        return None
    text = value if isinstance(value, str) else java_str(value)
    fields = _pattern(2, fmt)
    moment = _parse(fields, text, _zone_arg(3, zone))
    return None if moment is None else _millis(moment)


@stellar_function(
    "IS_DATE",
    description="Determines whether a string is a date in the given Java date format.",
    params=["date - The string to test", "format - The Java SimpleDateFormat pattern"],
    returns="True if the string can be read with the format, false otherwise",
)
def is_date(value: Any, fmt: Any) -> bool:
    if not isinstance(value, str):
        return False
    return _parse(_pattern(2, fmt), value, timezone.utc) is not None


_ABSENT = object()


@stellar_function(
    "DATE_FORMAT",
    description="Formats an epoch timestamp (milliseconds; default now) with a Java date format.",
    params=[
        "format - The Java SimpleDateFormat pattern",
        "timestampField? - The epoch timestamp in milliseconds (default now); with two arguments, a string "
        "second argument is the time zone",
        "timezone? - The time zone; default UTC",
    ],
    returns="The formatted date; null for a null format, or a null second argument of two",
    pure=False,
)
def date_format(fmt: Any, timestamp: Any = _ABSENT, zone: Any = _ABSENT) -> str | None:
    if fmt is None:
        return None
    if zone is _ABSENT:
        if timestamp is None:
            return None  # DATE_FORMAT(format, null) is null in Metron
        zone = None
    if timestamp is _ABSENT:
        timestamp = None
    if zone is None and isinstance(timestamp, str) and _zone(timestamp) is not None:
        timestamp, zone = None, timestamp  # DATE_FORMAT(format, timezone), as in Metron
    fields = _pattern(1, fmt)
    tz = _zone_arg(3, zone)
    moment = datetime.now(tz) if timestamp is None else _datetime(2, timestamp, tz)
    return _format(fields, moment)


_NOW = object()


def _calendar_field(value: Any = _NOW) -> datetime | None:
    """The moment of an epoch-milliseconds argument (now when absent); null for null or a non-number."""
    if value is _NOW:
        return datetime.now(timezone.utc)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = A.number(1, value)
        except StellarEvaluationError:
            return None
    if not is_number(value):
        return None
    return _datetime(1, value)


_EPOCH_PARAM = ["dateTime? - The date-time as epoch milliseconds; default now"]


@stellar_function(
    "DAY_OF_WEEK",
    description="The number of the day within the week (UTC); Sunday is 1, Saturday 7.",
    params=_EPOCH_PARAM,
    pure=False,
    returns="The day of the week, 1 to 7",
)
def day_of_week(value: Any = _NOW) -> int | None:
    moment = _calendar_field(value)
    return None if moment is None else _sunday_based(moment.weekday())


@stellar_function(
    "DAY_OF_MONTH",
    description="The number of the day within the month (UTC); the first day is 1.",
    params=_EPOCH_PARAM,
    pure=False,
    returns="The day of the month",
)
def day_of_month(value: Any = _NOW) -> int | None:
    moment = _calendar_field(value)
    return None if moment is None else moment.day


@stellar_function(
    "DAY_OF_YEAR",
    description="The number of the day within the year (UTC); January 1 is 1.",
    params=_EPOCH_PARAM,
    pure=False,
    returns="The day of the year",
)
def day_of_year(value: Any = _NOW) -> int | None:
    moment = _calendar_field(value)
    return None if moment is None else moment.timetuple().tm_yday


@stellar_function(
    "MONTH",
    description="The number of the month (UTC), counted from 0: January is 0, December 11.",
    params=_EPOCH_PARAM,
    pure=False,
    returns="The 0-based month",
)
def month(value: Any = _NOW) -> int | None:
    moment = _calendar_field(value)
    return None if moment is None else moment.month - 1


@stellar_function(
    "YEAR",
    description="The year (UTC).",
    params=_EPOCH_PARAM,
    pure=False,
    returns="The year",
)
def year(value: Any = _NOW) -> int | None:
    moment = _calendar_field(value)
    return None if moment is None else moment.year


@stellar_function(
    "WEEK_OF_MONTH",
    description="The number of the week within the month (UTC, weeks starting on Sunday); the first week is 1.",
    params=_EPOCH_PARAM,
    pure=False,
    returns="The week of the month",
)
def week_of_month(value: Any = _NOW) -> int | None:
    moment = _calendar_field(value)
    return None if moment is None else _week_of_month(moment.date())


@stellar_function(
    "WEEK_OF_YEAR",
    description="The number of the week within the year (UTC, weeks starting on Sunday); "
    "week 1 is the week containing January 1.",
    params=_EPOCH_PARAM,
    pure=False,
    returns="The week of the year",
)
def week_of_year(value: Any = _NOW) -> int | None:
    moment = _calendar_field(value)
    return None if moment is None else _week_of_year(moment.date())


@stellar_function(
    "NOW",
    description="The current time as epoch milliseconds.",
    params=[],
    returns="The current epoch timestamp in milliseconds",
    pure=False,
)
def now() -> int:
    return time.time_ns() // 1_000_000
