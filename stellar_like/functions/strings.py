"""String functions: case, trimming, joining and splitting, padding, regular expressions, FORMAT.

Null in gives null out for the transforming functions (TO_UPPER, TRIM, SUBSTRING...) and false
for the predicates (STARTS_WITH, REGEXP_MATCH...). Regular expressions use Python's ``re``, which
reads the usual Java patterns the same way; REGEXP_MATCH matches the whole string, as Java's
``Matcher.matches()`` does, and REGEXP_REPLACE understands Java's ``$1`` group references.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from stellar_like.errors import StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import is_number, java_str


def _text(value: Any) -> str:
    return value if isinstance(value, str) else java_str(value)


@stellar_function(
    "TO_UPPER",
    description="Transforms the first argument to an uppercase string.",
    params=["input - The string to transform"],
    returns="The uppercase string, or null for null input",
)
def to_upper(value: Any) -> str | None:
    return None if value is None else _text(value).upper()


@stellar_function(
    "TO_LOWER",
    description="Transforms the first argument to a lowercase string.",
    params=["input - The string to transform"],
    returns="The lowercase string, or null for null input",
)
def to_lower(value: Any) -> str | None:
    return None if value is None else _text(value).lower()


@stellar_function(
    "TRIM",
    description="Removes whitespace from both ends of a string.",
    params=["input - The string to trim"],
    returns="The trimmed string, or null for null input",
)
def trim(value: Any) -> str | None:
    return None if value is None else _text(value).strip()


@stellar_function(
    "JOIN",
    description="Joins the items of a list into one string, separated by a delimiter; null items are skipped.",
    params=["list - The list of values to join", "delim - The delimiter placed between items"],
    returns="The joined string",
)
def join(items: Any, delim: Any) -> str | None:
    if items is None:
        return None
    values = A.sequence(1, items)
    separator = "" if delim is None else A.string(2, delim)
    return separator.join(_text(item) for item in values if item is not None)


@stellar_function(
    "SPLIT",
    description="Splits a string at every occurrence of a delimiter (taken literally, not as a regex).",
    params=["input - The string to split", "delim - The delimiter"],
    returns="The list of pieces (empty pieces are kept); an empty list for null input",
)
def split(value: Any, delim: Any) -> list[str]:
    if value is None:
        return []
    text = _text(value)
    separator = A.string(2, delim)
    if separator == "":
        return list(text)
    return text.split(separator)


@stellar_function(
    "LENGTH",
    description="Returns the length of a string or the size of a list or map; null has length 0.",
    params=["input - A string, list or map"],
    returns="The length as an integer (0 for null and for values that are not strings or collections)",
)
def length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, set, frozenset)) or isinstance(value, Mapping):
        return len(value)
    return 0  # as in Metron, anything that is not a string or collection has length 0


@stellar_function(
    "IS_EMPTY",
    description="Returns true if a string or collection is empty or null.",
    params=["input - A string, list or map"],
    returns="True if the input is null or empty, false otherwise",
)
def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, list, tuple, set, frozenset)) or isinstance(value, Mapping):
        return len(value) == 0
    return False


@stellar_function(
    "STARTS_WITH",
    description="Determines whether a string starts with a prefix.",
    params=["string - The string to test", "prefix - The proposed prefix"],
    returns="True if the string starts with the prefix, false otherwise (and for null)",
)
def starts_with(value: Any, prefix: Any) -> bool:
    if value is None or prefix is None:
        return False
    return A.string(1, value).startswith(A.string(2, prefix))


@stellar_function(
    "ENDS_WITH",
    description="Determines whether a string ends with a suffix.",
    params=["string - The string to test", "suffix - The proposed suffix"],
    returns="True if the string ends with the suffix, false otherwise (and for null)",
)
def ends_with(value: Any, suffix: Any) -> bool:
    if value is None or suffix is None:
        return False
    return A.string(1, value).endswith(A.string(2, suffix))


_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<([A-Za-z][A-Za-z0-9]*)>")
_JAVA_BACKREFERENCE = re.compile(r"\\k<([A-Za-z][A-Za-z0-9]*)>")


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    # Java spells named groups (?<name>...) and \k<name>; Python wants (?P<name>...) and (?P=name).
    translated = _JAVA_NAMED_GROUP.sub(r"(?P<\1>", pattern)
    translated = _JAVA_BACKREFERENCE.sub(r"(?P=\1)", translated)
    return re.compile(translated)


def _compile(index: int, pattern: Any) -> re.Pattern[str]:
    text = A.string(index, pattern)
    try:
        return _regex(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise argument_error(index, text, f"is not a valid regular expression ({exc})") from None


@stellar_function(
    "REGEXP_MATCH",
    description="Determines whether a regular expression matches the whole string. "
    "With a list of patterns, true if any of them matches.",
    params=["string - The string to test", "pattern - A regex pattern or a list of patterns"],
    returns="True if the string matches, false otherwise (and for null)",
)
def regexp_match(value: Any, pattern: Any) -> bool:
    if value is None or pattern is None:
        return False
    text = A.string(1, value)
    if isinstance(pattern, (list, tuple)):
        return any(p is not None and _compile(2, _text(p)).fullmatch(text) is not None for p in pattern)
    return _compile(2, pattern).fullmatch(text) is not None


@stellar_function(
    "REGEXP_GROUP_VAL",
    description="Returns a capture group of a regular expression matched against the whole string.",
    params=[
        "string - The string to match",
        "pattern - The regex pattern",
        "group - The group number, starting at 1 (0 returns the input)",
    ],
    returns="The group's value, or null if the pattern does not match, has no such group or the group is not a number",
)
def regexp_group_val(value: Any, pattern: Any, group: Any) -> str | None:
    if isinstance(group, bool) or not isinstance(group, (int, float, str)):
        return None
    try:
        number = A.integer(3, group)
    except StellarEvaluationError:
        return None  # not an integer group number: Metron gives null
    if number == 0:
        return None if value is None else A.string(1, value)
    if value is None or pattern is None:
        return None
    match = _compile(2, pattern).fullmatch(A.string(1, value))
    if match is None or number < 0 or number > (match.re.groups or 0):
        return None
    return match.group(number)


def _java_replacement(index: int, template: str) -> list[str | int]:
    """Split a Java replacement string into literal text and group references ($1, ${name})."""
    parts: list[str | int] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template):
            literal.append(template[i + 1])
            i += 2
            continue
        if ch == "$":
            named = re.match(r"\$\{([A-Za-z][A-Za-z0-9]*)\}", template[i:])
            digits = re.match(r"\$(\d+)", template[i:])
            if named:
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append("\x00" + named.group(1))  # marker for a named group
                i += named.end()
                continue
            if digits:
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(int(digits.group(1)))
                i += digits.end()
                continue
            raise argument_error(index, template, "has an illegal group reference")
        literal.append(ch)
        i += 1
    if literal:
        parts.append("".join(literal))
    return parts


@stellar_function(
    "REGEXP_REPLACE",
    description="Replaces every match of a regular expression in a string; "
    "the replacement may refer to groups as $1 or ${name}.",
    params=["string - The input string", "pattern - The regex pattern", "value - The replacement"],
    returns="The string with replacements made (unchanged for an empty pattern or replacement), or null for null "
    "or empty input",
)
def regexp_replace(value: Any, pattern: Any, replacement: Any) -> str | None:
    if value is None or value == "":
        return None
    text = A.string(1, value)
    if pattern is None or pattern == "" or replacement is None or replacement == "":
        return text  # as in Metron, an empty replacement leaves the string unchanged
    regex = _compile(2, pattern)
    parts = _java_replacement(3, A.string(3, replacement))

    def substitute(match: re.Match[str]) -> str:
        out: list[str] = []
        for part in parts:
            if isinstance(part, int):
                if part > (regex.groups or 0):
                    raise argument_error(3, replacement, f"refers to group {part}, which the pattern does not have")
                out.append(match.group(part) or "")
            elif part.startswith("\x00"):
                try:
                    out.append(match.group(part[1:]) or "")
                except IndexError:
                    raise argument_error(3, replacement, f"refers to unknown group {part[1:]!r}") from None
            else:
                out.append(part)
        return "".join(out)

    return regex.sub(substitute, text)


MAX_PADDED_LENGTH = 1 << 20
"""FILL_LEFT/FILL_RIGHT and FORMAT widths beyond this are errors, not a way to exhaust memory."""


def _pad(value: Any, fill: Any, size: Any, left: bool) -> str | None:
    if value is None:
        return None
    text = _text(value)
    if fill is None or size is None:
        raise argument_error(2 if fill is None else 3, None, "is required: both the fill and the length must be given")
    padding = _text(fill)
    if padding == "":
        raise argument_error(2, fill, "is empty: the fill must be a character")
    padding = padding[0]  # Metron pads with the fill's first character
    target = A.to_integer(3, size)
    if target is None:  # pragma: no cover - size is not null here
        raise argument_error(3, size, "is not an integer")
    if target > MAX_PADDED_LENGTH:
        raise argument_error(3, size, f"is larger than the maximum padded length {MAX_PADDED_LENGTH}")
    missing = target - len(text)
    if missing <= 0:
        return text
    return padding * missing + text if left else text + padding * missing


@stellar_function(
    "FILL_LEFT",
    description="Pads a string on the left with a fill string up to a given length.",
    params=[
        "input - The string",
        "fill - The fill character (the first character of a longer string)",
        "len - The required length",
    ],
    returns="The padded string (unchanged if already long enough), or null for null input",
)
def fill_left(value: Any, fill: Any, size: Any) -> str | None:
    return _pad(value, fill, size, left=True)


@stellar_function(
    "FILL_RIGHT",
    description="Pads a string on the right with a fill string up to a given length.",
    params=[
        "input - The string",
        "fill - The fill character (the first character of a longer string)",
        "len - The required length",
    ],
    returns="The padded string (unchanged if already long enough), or null for null input",
)
def fill_right(value: Any, fill: Any, size: Any) -> str | None:
    return _pad(value, fill, size, left=False)


@stellar_function(
    "SUBSTRING",
    description="Returns part of a string, from start (inclusive) to end (exclusive), 0-based.",
    params=[
        "input - The string",
        "start - The start index, inclusive",
        "end? - The end index, exclusive; default the end",
    ],
    returns="The substring ('' for an empty input), or null for a null input or start",
)
def substring(value: Any, start: Any, end: Any = None) -> str | None:
    if value is None or start is None:
        return None
    text = A.string(1, value)
    if text == "":
        return text
    begin = A.integer(2, start)
    stop = len(text) if end is None else A.integer(3, end)
    if begin < 0 or begin > len(text):
        raise argument_error(2, start, f"is out of range for a string of length {len(text)}")
    if stop < begin or stop > len(text):
        raise argument_error(3, end, f"is out of range for a string of length {len(text)} starting at {begin}")
    return text[begin:stop]


@stellar_function(
    "CHOP",
    description="Removes the last character of a string (both characters of a trailing \\r\\n).",
    params=["string - The string to chop"],
    returns="The string without its last character, or null for null input",
)
def chop(value: Any) -> str | None:
    if value is None:
        return None
    text = A.string(1, value)
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1]


@stellar_function(
    "CHOMP",
    description="Removes one newline (\\n, \\r or \\r\\n) from the end of a string if there is one.",
    params=["string - The string to chomp"],
    returns="The string without a trailing newline, or null for null input",
)
def chomp(value: Any) -> str | None:
    if value is None:
        return None
    text = A.string(1, value)
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


@stellar_function(
    "COUNT_MATCHES",
    description="Counts the non-overlapping occurrences of a substring in a string.",
    params=["string - The string to search", "substring - The substring to count"],
    returns="The number of occurrences; 0 if either is null or empty",
)
def count_matches(value: Any, sub: Any) -> int:
    if value is None or sub is None:
        return 0
    text, needle = A.string(1, value), _text(sub)
    return text.count(needle) if needle else 0


@stellar_function(
    "APPEND_IF_MISSING",
    description="Appends a suffix to a string unless it already ends with it or with one of the other suffixes given.",
    params=["string - The string", "suffix - The suffix to append", "additionalsuffix* - Other acceptable endings"],
    returns="The string ending with a suffix, or null for null input",
)
def append_if_missing(value: Any, suffix: Any, *others: Any) -> str | None:
    if value is None:
        return None
    text = A.string(1, value)
    if suffix is None or suffix == "":
        return text
    wanted = A.string(2, suffix)
    endings = [wanted] + [A.string(3 + i, s) for i, s in enumerate(others) if s is not None]
    if any(e and text.endswith(e) for e in endings):
        return text
    return text + wanted


@stellar_function(
    "PREPEND_IF_MISSING",
    description="Prepends a prefix to a string unless it already starts with it "
    "or with one of the other prefixes given.",
    params=["string - The string", "prefix - The prefix to prepend", "additionalprefix* - Other acceptable beginnings"],
    returns="The string starting with a prefix, or null for null input",
)
def prepend_if_missing(value: Any, prefix: Any, *others: Any) -> str | None:
    if value is None:
        return None
    text = A.string(1, value)
    if prefix is None or prefix == "":
        return text
    wanted = A.string(2, prefix)
    beginnings = [wanted] + [A.string(3 + i, s) for i, s in enumerate(others) if s is not None]
    if any(b and text.startswith(b) for b in beginnings):
        return text
    return wanted + text


@stellar_function(
    "STRING_ENTROPY",
    description="Computes the base-2 Shannon entropy of the characters of a string.",
    params=["input - The string"],
    returns="The entropy in bits per character (0.0 for an empty or null string)",
)
def string_entropy(value: Any) -> float:
    if value is None:
        return 0.0
    text = _text(value)
    if not text:
        return 0.0
    total = len(text)
    entropy = 0.0
    for count in Counter(text).values():
        p = count / total
        entropy -= p * math.log2(p)
    return entropy


# ---- FORMAT --------------------------------------------------------------------------------------

_FORMAT_SPEC = re.compile(r"%(?:(\d+)\$|(<))?([-#+ 0,(]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _format_one(conv: str, flags: str, width: int | None, precision: int | None, arg: Any, index: int) -> str:
    upper = conv.isupper() and conv not in ("X",)
    kind = conv.lower()
    if kind in ("s",):
        text = java_str(arg)
        if precision is not None:
            text = text[:precision]
        result = text.upper() if conv == "S" else text
    elif kind == "b":
        text = "false" if arg is None or arg is False else "true"
        if precision is not None:
            text = text[:precision]
        result = text.upper() if conv == "B" else text
    elif kind == "c":
        if isinstance(arg, str) and len(arg) == 1:
            result = arg
        elif isinstance(arg, int) and not isinstance(arg, bool) and 0 <= arg <= 0x10FFFF:
            result = chr(arg)
        elif arg is None:
            result = "null"
        else:
            raise argument_error(index, arg, f"cannot be formatted with %{conv}")
        result = result.upper() if conv == "C" else result
    elif kind in ("d", "x", "o"):
        if arg is None:
            result = "null"
        elif not (isinstance(arg, int) and not isinstance(arg, bool)):
            raise argument_error(index, arg, f"cannot be formatted with %{conv}")
        else:
            spec = _numeric_spec(flags, width, None, {"d": "d", "x": "x", "o": "o"}[kind])
            if kind == "x" and arg < 0:
                arg &= (1 << 64) - 1 if arg < -(1 << 31) else (1 << 32) - 1  # Java prints two's complement
            result = format(arg, spec)
            if conv == "X":
                result = result.upper()
            width = None  # already applied
    elif kind in ("f", "e", "g"):
        if arg is None:
            result = "null"
        elif not is_number(arg):
            raise argument_error(index, arg, f"cannot be formatted with %{conv}")
        else:
            value = float(arg)
            if math.isnan(value) or math.isinf(value):
                result = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            else:
                spec = _numeric_spec(flags, width, 6 if precision is None else precision, kind)
                result = format(value, spec)
                width = None
            if upper:
                result = result.upper()
    else:
        raise argument_error(1, "%" + conv, "is not a supported format conversion")
    if width is not None and len(result) < width:
        result = result.ljust(width) if "-" in flags else result.rjust(width)
    return result


def _numeric_spec(flags: str, width: int | None, precision: int | None, type_char: str) -> str:
    spec = ""
    if "-" in flags:
        spec += "<"
    if "+" in flags:
        spec += "+"
    elif " " in flags:
        spec += " "
    if "#" in flags:
        spec += "#"
    if "0" in flags and "-" not in flags:
        spec += "0"
    if width is not None:
        spec += str(width)
    if "," in flags:
        spec += ","
    if precision is not None:
        spec += f".{precision}"
    return spec + type_char


@stellar_function(
    "FORMAT",
    description="Returns a string formatted with Java's format conventions "
    "(%s, %d, %f, %.2f, %x, %e, %b, %c, %n, %%, widths and flags).",
    params=["format - The format string", "arguments* - The values to format"],
    returns="The formatted string",
)
def format_(fmt: Any, *arguments: Any) -> str:
    template = A.string(1, fmt)
    out: list[str] = []
    position = 0
    ordinary = 0
    last: int | None = None
    for match in _FORMAT_SPEC.finditer(template):
        literal = template[position : match.start()]
        if "%" in literal:
            raise argument_error(1, template, "has an incomplete format specifier")
        out.append(literal)
        position = match.end()
        explicit, relative, flags, width, precision, conv = match.groups()
        if (width and int(width) > MAX_PADDED_LENGTH) or (precision and int(precision) > MAX_PADDED_LENGTH):
            raise argument_error(1, template, f"asks for a width or precision above {MAX_PADDED_LENGTH}")
        if conv == "%":
            out.append("%")
            continue
        if conv == "n":
            out.append("\n")
            continue
        if relative:
            if last is None:
                raise argument_error(1, template, "refers to a previous argument with %< before any argument")
            arg_index = last
        elif explicit:
            arg_index = int(explicit) - 1
        else:
            arg_index = ordinary
            ordinary += 1
        if arg_index < 0 or arg_index >= len(arguments):
            raise argument_error(1, template, f"needs an argument {arg_index + 1} that was not given")
        last = arg_index
        out.append(
            _format_one(
                conv,
                flags or "",
                int(width) if width else None,
                int(precision) if precision else None,
                arguments[arg_index],
                arg_index + 2,
            )
        )
    rest = template[position:]
    if "%" in rest:
        raise argument_error(1, template, "has an incomplete format specifier")
    out.append(rest)
    return "".join(out)
