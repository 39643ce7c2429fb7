"""Hashing and encoding functions: HASH, GET_HASHES_AVAILABLE, ENCODE, DECODE, IS_ENCODING.

Hash names follow Java's (``MD5``, ``SHA-1``, ``SHA-256``, ``SHA3-256``...), matched without regard
to case or dashes. Encodings are BASE32, BASE32HEX, BASE64, BINARY and HEX.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from stellar_like.errors import argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import java_str

_HASHES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-224": "sha224",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
    "SHA-512/224": "sha512_224",
    "SHA-512/256": "sha512_256",
    "SHA3-224": "sha3_224",
    "SHA3-256": "sha3_256",
    "SHA3-384": "sha3_384",
    "SHA3-512": "sha3_512",
    "BLAKE2B": "blake2b",
    "BLAKE2S": "blake2s",
}


def _hash_key(name: str) -> str:
    return re.sub(r"[-_]", "", name.upper())


_BY_KEY = {_hash_key(name): algorithm for name, algorithm in _HASHES.items()}


@stellar_function(
    "GET_HASHES_AVAILABLE",
    description="Lists the hash algorithms HASH supports.",
    params=[],
    returns="A list of algorithm names",
)
def get_hashes_available() -> list[str]:
    return sorted([*_HASHES, "TLSH"])


def _tlsh(value: Any, config: Mapping[str, Any]) -> str | dict[str, str] | None:
    import tlsh

    if value is None:
        return None
    bucket = config.get("bucketSize", 128)
    checksum = config.get("checksumBytes", 1)
    if A.to_integer(3, bucket) != 128 or A.to_integer(3, checksum) != 1:
        raise argument_error(3, dict(config), "asks for a TLSH variant other than 128 buckets with a 1-byte checksum")
    force = config.get("force", True)
    data = value if isinstance(value, (bytes, bytearray)) else _bytes(value, "utf-8")
    lenient = force is not False and str(force).lower() != "false"
    digest = tlsh.hash(bytes(data)) if lenient else tlsh.conservativehash(bytes(data))
    if not digest or digest == "TNULL":
        return None  # too little data, or too little variation in it
    digest = digest[2:] if digest.startswith("T1") else digest
    hashes = config.get("hashes")
    if hashes is None or hashes == []:
        return digest
    sizes = [A.to_integer(3, h) for h in (hashes if isinstance(hashes, (list, tuple)) else [hashes])]
    result: dict[str, str] = {"tlsh": digest}
    body = bytes.fromhex(digest[2:])  # the bins project the hash body, without its checksum byte
    bits = int.from_bytes(body, "little")
    length = bits.bit_length()
    rng = random.Random(0)
    for size in sizes:
        if size is None or size <= 0:
            raise argument_error(3, dict(config), "has a 'hashes' size that is not a positive integer")
        projection = 0
        for i in range(size):
            if length and (bits >> rng.randrange(length)) & 1:
                projection |= 1 << i
        key = "tlsh_bin" if len(sizes) == 1 else f"tlsh_bin_{size}"
        result[key] = f"{size}{projection.to_bytes((size + 7) // 8, 'little').hex()}"
    return result


def _bytes(value: Any, charset: str) -> bytes:
    text = value if isinstance(value, str) else java_str(value)
    try:
        return text.encode(charset)
    except LookupError:
        raise argument_error(3, charset, "is not a known character set") from None


@stellar_function(
    "HASH",
    description="Hashes a value with the named algorithm and returns the hex digest. Non-string values are "
    "hashed as their string form. 'TLSH' gives the locality-sensitive hash (compare with TLSH_DIST).",
    params=[
        "toHash - The value to hash",
        "hashType - The algorithm, e.g. 'SHA-256' or 'TLSH' (see GET_HASHES_AVAILABLE)",
        "config? - A map: 'charset' (default UTF-8) for the digests; for TLSH 'force' (default true: 50 "
        "bytes suffice, otherwise 256 are needed) and 'hashes' (bin sizes: the result is then a map with "
        "'tlsh' and 'tlsh_bin' or 'tlsh_bin_<size>' keys)",
    ],
    returns="The lowercase hex digest ('00' repeated to the digest's length for null input); null if the "
    "algorithm is null or TLSH cannot hash the data",
)
def hash_(value: Any, algorithm: Any, config: Any = None) -> str | dict[str, str] | None:
    if algorithm is None:
        return None
    name = A.string(2, algorithm)
    settings: Mapping[str, Any] = {} if config is None or not isinstance(config, Mapping) else config
    if name.upper() == "TLSH":
        return _tlsh(value, settings)
    resolved = _BY_KEY.get(_hash_key(name))
    if resolved is None:
        raise argument_error(2, name, "is not a supported hash algorithm (see GET_HASHES_AVAILABLE)")
    hasher = hashlib.new(resolved)
    if value is None:
        return "00" * hasher.digest_size
    hasher.update(_bytes(value, str(settings.get("charset", "utf-8"))))
    return hasher.hexdigest()


def _binary_encode(data: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in data)


def _binary_decode(text: str) -> bytes:
    if len(text) % 8 or set(text) - {"0", "1"}:
        raise ValueError("not a binary string")
    return bytes(int(text[i : i + 8], 2) for i in range(0, len(text), 8))


_ENCODERS: dict[str, tuple[Callable[[bytes], str], Callable[[str], bytes]]] = {
    "BASE32": (lambda b: base64.b32encode(b).decode("ascii"), lambda s: base64.b32decode(s)),
    "BASE32HEX": (lambda b: base64.b32hexencode(b).decode("ascii"), lambda s: base64.b32hexdecode(s)),
    "BASE64": (lambda b: base64.b64encode(b).decode("ascii"), lambda s: base64.b64decode(s, validate=True)),
    "BINARY": (_binary_encode, _binary_decode),
    "HEX": (lambda b: b.hex(), lambda s: bytes.fromhex(s)),
}


def _encoding(index: int, value: Any) -> tuple[Callable[[bytes], str], Callable[[str], bytes]]:
    name = A.string(index, value).upper()
    if name not in _ENCODERS:
        raise argument_error(index, value, f"is not a supported encoding ({', '.join(sorted(_ENCODERS))})")
    return _ENCODERS[name]


@stellar_function(
    "GET_SUPPORTED_ENCODINGS",
    description="Lists the encodings ENCODE, DECODE and IS_ENCODING support.",
    params=[],
    returns="A list of encoding names",
)
def get_supported_encodings() -> list[str]:
    return sorted(_ENCODERS)


@stellar_function(
    "ENCODE",
    description="Encodes the UTF-8 bytes of a string with BASE32, BASE32HEX, BASE64, BINARY or HEX.",
    params=["string - The string to encode", "encoding - The encoding"],
    returns="The encoded string, or null for null or empty input",
)
def encode(value: Any, encoding: Any) -> str | None:
    encoder, _ = _encoding(2, encoding)
    if value is None or value == "":
        return None
    return encoder(A.string(1, value).encode("utf-8"))


@stellar_function(
    "DECODE",
    description="Decodes a string encoded with BASE32, BASE32HEX, BASE64, BINARY or HEX.",
    params=["string - The string to decode", "encoding - The encoding", "verify? - Unused; decoding always verifies"],
    returns="The decoded string; the input itself if it is not validly encoded; null for null or empty input",
)
def decode(value: Any, encoding: Any, verify: Any = None) -> str | None:
    _, decoder = _encoding(2, encoding)
    if value is None or value == "":
        return None
    text = A.string(1, value)
    try:
        return decoder(text).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return text


@stellar_function(
    "IS_ENCODING",
    description="Determines whether a string is validly encoded with the given encoding.",
    params=["string - The string to test", "encoding - The encoding"],
    returns="True if the string decodes with the encoding, false otherwise",
)
def is_encoding(value: Any, encoding: Any) -> bool:
    _, decoder = _encoding(2, encoding)
    if not isinstance(value, str) or value == "":
        return False
    try:
        decoder(value).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return True
