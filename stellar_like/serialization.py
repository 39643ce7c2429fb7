"""Serialisable summary objects (statistics, Bloom filters, HyperLogLog++, samplers, MAD states).

Stellar functions such as ``STATS_ADD``, ``BLOOM_ADD`` or ``HLLP_ADD`` build summary objects that
a profile keeps between windows, writes to a store and merges later. Every such object here is a
:class:`Sketch`: it can be merged with others of its kind (by its ``*_MERGE`` function) and turned
into bytes and back with :func:`serialize` and :func:`deserialize`, so it can be written to a file,
a key-value store or HDFS and read again (``OBJECT_GET`` reads this format as well as JSON).

The byte format is ``MAGIC``, then one byte giving the length of the type tag, the tag (ASCII)
and the sketch's own payload. Payloads are JSON or a library's documented serialisation (the
t-digest's ``to_bytes``, the Bloom filter's ``save_bytes``, the HyperLogLog registers), never
pickle, so reading an untrusted file cannot run code.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

__all__ = ["Sketch", "SketchError", "MAGIC", "serialize", "deserialize", "register", "is_serialized"]

MAGIC = b"\x00STELLAR-SKETCH\x01"


class SketchError(ValueError):
    """Bytes that are not a readable sketch, or a sketch that cannot be merged or written."""


class Sketch:
    """Base of the serialisable summary objects; subclasses set ``TAG`` and the two byte methods."""

    TAG: ClassVar[str] = ""

    def payload(self) -> bytes:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    @classmethod
    def from_payload(cls, data: bytes) -> Sketch:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """This sketch in the serialised form :func:`deserialize` reads."""
        return serialize(self)


_TYPES: dict[str, type[Sketch]] = {}


def register(cls: type[Sketch]) -> type[Sketch]:
    """Class decorator: make ``cls`` readable by :func:`deserialize` under its ``TAG``."""
    if not cls.TAG or len(cls.TAG) > 255:
        raise ValueError(f"sketch class {cls.__name__} needs a TAG of 1 to 255 characters")
    _TYPES[cls.TAG] = cls
    return cls


def serialize(value: Any) -> bytes:
    """A sketch as its tagged bytes; any other value (maps, lists, numbers...) as JSON."""
    if isinstance(value, Sketch):
        tag = value.TAG.encode("ascii")
        return MAGIC + bytes([len(tag)]) + tag + value.payload()
    if isinstance(value, (set, frozenset)):
        value = list(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise SketchError(f"cannot serialise a {type(value).__name__}: {exc}") from None


def is_serialized(data: bytes) -> bool:
    """Whether ``data`` starts like a serialised sketch."""
    return data.startswith(MAGIC)


def deserialize(data: bytes) -> Any:
    """The sketch (or JSON value) that :func:`serialize` wrote."""
    if not data.startswith(MAGIC):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SketchError(f"neither a serialised sketch nor JSON: {exc}") from None
    rest = data[len(MAGIC) :]
    if not rest:
        raise SketchError("truncated sketch: no type tag")
    size = rest[0]
    tag = rest[1 : 1 + size].decode("ascii", errors="replace")
    if len(tag) != size:
        raise SketchError("truncated sketch: incomplete type tag")
    cls = _TYPES.get(tag)
    if cls is None:
        raise SketchError(f"unknown sketch type {tag!r}")
    try:
        return cls.from_payload(rest[1 + size :])
    except SketchError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise SketchError(f"corrupt {tag} sketch: {exc}") from None
