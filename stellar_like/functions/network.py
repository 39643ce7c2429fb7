"""Network functions: domains, URLs, IP addresses, subnets, e-mail addresses, IANA protocols.

Splitting a domain into its registrable part and its public suffix ("www.google.co.uk" →
"google.co.uk" and "co.uk") needs the Public Suffix List. It comes from the ``publicsuffixlist``
package, which ships a copy of the list inside the package and reads it offline: nothing is
downloaded at run time. The list is loaded on first use. Suffixes from the list's private section
(``blogspot.com``, ``github.io``) count as suffixes too, so "evil.github.io" is its own registrable
domain; a TLD missing from the list is treated as a one-label suffix.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import threading
from typing import Any
from urllib.parse import SplitResult, urlsplit

from stellar_like.errors import StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function

_psl_lock = threading.Lock()
_psl: Any = None


def _suffix_list() -> Any:
    global _psl
    if _psl is None:
        with _psl_lock:
            if _psl is None:
                try:
                    from publicsuffixlist import PublicSuffixList
                except ImportError:  # pragma: no cover - the package is a dependency
                    raise StellarEvaluationError(
                        "the domain functions need the 'publicsuffixlist' package (pip install publicsuffixlist)"
                    ) from None
                _psl = PublicSuffixList()
    return _psl


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _is_ip(text: str) -> bool:
    return _address(text.strip("[]")) is not None


def _split_domain(index: int, value: Any) -> tuple[tuple[str, ...], int] | None:
    """The domain's labels (original case) and how many trailing labels form its public suffix."""
    if value is None:
        return None
    return _split_domain_text(A.string(index, value))


@functools.lru_cache(maxsize=4096)
def _split_domain_text(text: str) -> tuple[tuple[str, ...], int] | None:
    domain = text.strip().rstrip(".")
    if not domain or ".." in domain or _is_ip(domain):
        return None
    labels = tuple(domain.split("."))
    suffix = _suffix_list().publicsuffix(domain.lower())
    if suffix is None:
        return None
    return labels, suffix.count(".") + 1


@stellar_function(
    "DOMAIN_REMOVE_SUBDOMAINS",
    description="Removes the subdomains from a domain, leaving the registrable domain "
    "(for example DOMAIN_REMOVE_SUBDOMAINS('mail.yahoo.co.uk') is 'yahoo.co.uk').",
    params=["domain - Fully qualified domain name"],
    returns="The domain without its subdomains; the input itself if it has none, or is an IP address",
)
def domain_remove_subdomains(value: Any) -> str | None:
    parts = _split_domain(1, value)
    if parts is None:
        return None if value is None else A.string(1, value)
    labels, suffix_labels = parts
    if len(labels) <= suffix_labels:
        return ".".join(labels)
    return ".".join(labels[-(suffix_labels + 1) :])


@stellar_function(
    "DOMAIN_REMOVE_TLD",
    description="Removes the top-level domain (public suffix) from a domain "
    "(for example DOMAIN_REMOVE_TLD('mail.yahoo.co.uk') is 'mail.yahoo').",
    params=["domain - Fully qualified domain name"],
    returns="The domain without its public suffix",
)
def domain_remove_tld(value: Any) -> str | None:
    parts = _split_domain(1, value)
    if parts is None:
        return None if value is None else A.string(1, value)
    labels, suffix_labels = parts
    return ".".join(labels[: max(0, len(labels) - suffix_labels)])


@stellar_function(
    "DOMAIN_TO_TLD",
    description="Extracts the top-level domain (public suffix) of a domain "
    "(for example DOMAIN_TO_TLD('mail.yahoo.co.uk') is 'co.uk').",
    params=["domain - Fully qualified domain name"],
    returns="The public suffix, or null if there is none (for an IP address, say)",
)
def domain_to_tld(value: Any) -> str | None:
    parts = _split_domain(1, value)
    if parts is None:
        return None
    labels, suffix_labels = parts
    return ".".join(labels[-suffix_labels:])


# ---- URLs ----------------------------------------------------------------------------------------

_DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "ws": 80,
    "wss": 443,
    "ftp": 21,
    "sftp": 22,
    "ssh": 22,
    "telnet": 23,
    "smtp": 25,
    "gopher": 70,
    "ldap": 389,
    "ldaps": 636,
    "imap": 143,
    "pop3": 110,
    "nntp": 119,
    "rtsp": 554,
    "file": -1,
    "jar": -1,
    "mailto": -1,
}


def _url(value: Any) -> SplitResult | None:
    if value is None:
        return None
    text = A.string(1, value).strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if not parts.scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme):
        return None
    return parts


@stellar_function(
    "URL_TO_HOST",
    description="Extracts the host name from a URL.",
    params=["url - The URL"],
    returns="The host, e.g. 'www.yahoo.com' for 'http://www.yahoo.com/foo'; null if the URL cannot be parsed",
)
def url_to_host(value: Any) -> str | None:
    parts = _url(value)
    if parts is None:
        return None
    try:
        return parts.hostname
    except ValueError:
        return None


@stellar_function(
    "URL_TO_PORT",
    description="Extracts the port from a URL; without an explicit port, "
    "the protocol's default (80 for http, 443 for https...).",
    params=["url - The URL"],
    returns="The port as an integer; null if the URL cannot be parsed or its protocol has no known default",
)
def url_to_port(value: Any) -> int | None:
    parts = _url(value)
    if parts is None:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if port is not None:
        return port
    return _DEFAULT_PORTS.get(parts.scheme.lower())


@stellar_function(
    "URL_TO_PATH",
    description="Extracts the path from a URL.",
    params=["url - The URL"],
    returns="The path, e.g. '/foo' for 'http://www.yahoo.com/foo'; null if the URL cannot be parsed",
)
def url_to_path(value: Any) -> str | None:
    parts = _url(value)
    return None if parts is None else parts.path


@stellar_function(
    "URL_TO_PROTOCOL",
    description="Extracts the protocol (scheme) from a URL.",
    params=["url - The URL"],
    returns="The protocol, e.g. 'http'; null if the URL cannot be parsed",
)
def url_to_protocol(value: Any) -> str | None:
    parts = _url(value)
    return None if parts is None else parts.scheme


# ---- addresses -----------------------------------------------------------------------------------


def _ip_versions(spec: Any) -> set[int]:
    names = [spec] if isinstance(spec, str) else list(A.sequence(2, spec))
    versions: set[int] = set()
    for name in names:
        key = str(name).strip().upper()
        if key == "IPV4":
            versions.add(4)
        elif key == "IPV6":
            versions.add(6)
        else:
            raise argument_error(2, spec, "must be 'IPV4', 'IPV6' or a list of them")
    return versions


@stellar_function(
    "IS_IP",
    description="Determines whether a string is an IP address of the given kind (IPv4 or IPv6 by default).",
    params=["ip - The value to test", "type? - 'IPV4', 'IPV6', or a list of them; default either"],
    returns="True if the value is such an IP address, false otherwise",
)
def is_ip(value: Any, kind: Any = None) -> bool:
    versions = {4, 6} if kind is None else _ip_versions(kind)
    if not isinstance(value, str):
        return False
    address = _address(value)
    return address is not None and address.version in versions


@functools.lru_cache(maxsize=1024)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr.strip(), strict=False)


@stellar_function(
    "IN_SUBNET",
    description="Determines whether an IP address is within at least one of the given subnets.",
    params=["ip - The IP address", "cidr+ - One or more subnets in CIDR notation, e.g. '192.168.0.0/24'"],
    returns="True if the address is in one of the subnets, false otherwise (and for a missing or invalid address)",
)
def in_subnet(value: Any, *cidrs: Any) -> bool:
    networks = []
    for index, cidr in enumerate(cidrs, start=2):
        if cidr is None:
            continue  # as in Metron, a null subnet is skipped
        try:
            networks.append(_network(A.string(index, cidr)))
        except ValueError:
            raise argument_error(index, cidr, "is not a valid CIDR subnet") from None
    if not isinstance(value, str):
        return False
    address = _address(value)
    if address is None:
        return False
    return any(address.version == net.version and address in net for net in networks)


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


def _valid_domain(text: str) -> bool:
    domain = text[:-1] if text.endswith(".") else text
    if not domain or len(domain) > 253:
        return False
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return False
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    tld = labels[-1].lower()
    if not (tld[0].isalpha() or tld.startswith("xn--")):
        return False
    return _suffix_list().publicsuffix(tld, accept_unknown=False) is not None


@stellar_function(
    "IS_DOMAIN",
    description="Determines whether a string is a valid domain name (RFC 1034 labels under a known top-level domain).",
    params=["address - The string to test"],
    returns="True if the string is a valid domain name, false otherwise",
)
def is_domain(value: Any) -> bool:
    return isinstance(value, str) and _valid_domain(value.strip())


_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


@stellar_function(
    "IS_EMAIL",
    description="Determines whether a string is a valid e-mail address.",
    params=["address - The string to test"],
    returns="True if the string is a valid e-mail address, false otherwise",
)
def is_email(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or len(local) > 64 or not _LOCAL_PART.match(local):
        return False
    if domain.startswith("[") and domain.endswith("]"):
        return _is_ip(domain)
    return _valid_domain(domain)


@stellar_function(
    "IS_URL",
    description="Determines whether a string is a valid http, https or ftp URL.",
    params=["url - The string to test"],
    returns="True if the string is a valid URL, false otherwise",
)
def is_url(value: Any) -> bool:
    if not isinstance(value, str) or any(ch.isspace() for ch in value.strip()):
        return False
    try:
        parts = urlsplit(value.strip())
        port = parts.port
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https", "ftp") or not host:
        return False
    if port is not None and not 0 <= port <= 65535:
        return False
    return _is_ip(host) or _valid_domain(host)


# ---- IANA protocol numbers -------------------------------------------------------------------------

# Keywords of the IANA "Assigned Internet Protocol Numbers" registry (numbers without a keyword left out).
_PROTOCOLS = {
    0: "HOPOPT", 1: "ICMP", 2: "IGMP", 3: "GGP", 4: "IPv4", 5: "ST", 6: "TCP", 7: "CBT", 8: "EGP", 9: "IGP",
    10: "BBN-RCC-MON", 11: "NVP-II", 12: "PUP", 13: "ARGUS", 14: "EMCON", 15: "XNET", 16: "CHAOS", 17: "UDP",
    18: "MUX", 19: "DCN-MEAS", 20: "HMP", 21: "PRM", 22: "XNS-IDP", 23: "TRUNK-1", 24: "TRUNK-2", 25: "LEAF-1",
    26: "LEAF-2", 27: "RDP", 28: "IRTP", 29: "ISO-TP4", 30: "NETBLT", 31: "MFE-NSP", 32: "MERIT-INP", 33: "DCCP",
    34: "3PC", 35: "IDPR", 36: "XTP", 37: "DDP", 38: "IDPR-CMTP", 39: "TP++", 40: "IL", 41: "IPv6", 42: "SDRP",
    43: "IPv6-Route", 44: "IPv6-Frag", 45: "IDRP", 46: "RSVP", 47: "GRE", 48: "DSR", 49: "BNA", 50: "ESP",
    51: "AH", 52: "I-NLSP", 53: "SWIPE", 54: "NARP", 55: "MOBILE", 56: "TLSP", 57: "SKIP", 58: "IPv6-ICMP",
    59: "IPv6-NoNxt", 60: "IPv6-Opts", 62: "CFTP", 64: "SAT-EXPAK", 65: "KRYPTOLAN", 66: "RVD", 67: "IPPC",
    69: "SAT-MON", 70: "VISA", 71: "IPCV", 72: "CPNX", 73: "CPHB", 74: "WSN", 75: "PVP", 76: "BR-SAT-MON",
    77: "SUN-ND", 78: "WB-MON", 79: "WB-EXPAK", 80: "ISO-IP", 81: "VMTP", 82: "SECURE-VMTP", 83: "VINES",
    84: "TTP", 85: "NSFNET-IGP", 86: "DGP", 87: "TCF", 88: "EIGRP", 89: "OSPFIGP", 90: "Sprite-RPC", 91: "LARP",
    92: "MTP", 93: "AX.25", 94: "IPIP", 95: "MICP", 96: "SCC-SP", 97: "ETHERIP", 98: "ENCAP", 100: "GMTP",
    101: "IFMP", 102: "PNNI", 103: "PIM", 104: "ARIS", 105: "SCPS", 106: "QNX", 107: "A/N", 108: "IPComp",
    109: "SNP", 110: "Compaq-Peer", 111: "IPX-in-IP", 112: "VRRP", 113: "PGM", 115: "L2TP", 116: "DDX",
    117: "IATP", 118: "STP", 119: "SRP", 120: "UTI", 121: "SMP", 122: "SM", 123: "PTP", 124: "ISIS over IPv4",
    125: "FIRE", 126: "CRTP", 127: "CRUDP", 128: "SSCOPMCE", 129: "IPLT", 130: "SPS", 131: "PIPE", 132: "SCTP",
    133: "FC", 134: "RSVP-E2E-IGNORE", 135: "Mobility Header", 136: "UDPLite", 137: "MPLS-in-IP", 138: "manet",
    139: "HIP", 140: "Shim6", 141: "WESP", 142: "ROHC", 143: "Ethernet", 144: "AGGFRAG", 145: "NSH",
    255: "Reserved",
}  # fmt: skip


@stellar_function(
    "PROTOCOL_TO_NAME",
    description="Converts an IANA protocol number to the protocol's name (6 is TCP, 17 is UDP).",
    params=["number - The IANA protocol number"],
    returns="The protocol name; the argument itself if it is not a known protocol number; null for null",
)
def protocol_to_name(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
        number = int(value)
    if number is None:
        return value
    return _PROTOCOLS.get(number, value)
