"""Which URLs and resolved addresses an outbound fetch may go to (SSRF guard, no I/O)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from jobrunner.errors import PermanentError

__all__ = ["IPAddress", "UrlTarget", "check_address", "check_addresses", "parse_url", "refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Kinds no HTTP server legitimately lives at: refused even with allow_private, since a
# caller asking for "private" targets means its own network, not these.
ALWAYS_REFUSED = frozenset({"unspecified", "multicast", "reserved"})


@dataclass(frozen=True)
class UrlTarget:
    """The parts of a checked URL a fetch needs: scheme, bare host name or literal, port."""

    url: str
    scheme: str
    host: str
    port: int


def parse_url(url: str) -> UrlTarget:
    """Split and validate ``url``: http or https only, with a host.

    Raises PermanentError ``url_scheme_not_allowed`` or ``url_invalid``.
    """
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise PermanentError("URL contains whitespace or control characters", code="url_invalid")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise PermanentError(
            f"URL scheme {scheme or '(none)'!r} is not allowed; use http or https",
            code="url_scheme_not_allowed",
            scheme=scheme,
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise PermanentError(f"bad port in URL: {exc}", code="url_invalid") from exc
    host = parts.hostname
    if not host:
        raise PermanentError("URL has no host", code="url_invalid")
    return UrlTarget(url=url, scheme=scheme, host=host, port=port or _DEFAULT_PORTS[scheme])


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public target ("loopback", "private", ...), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        # ::ffff:127.0.0.1 and friends reach the IPv4 host: judge that host instead.
        return refusal(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link_local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),  # before private, which also covers 240.0.0.0/4
        ("private", address.is_private),
        ("not_global", not address.is_global),  # e.g. 100.64.0.0/10 carrier-grade NAT
    )
    return next((kind for kind, hit in checks if hit), None)


def check_address(host: str, address: str, *, allow_private: bool) -> IPAddress:
    """Parse one resolved address of ``host`` and refuse it unless it is a fit target.

    Raises PermanentError ``url_target_not_allowed`` naming the host, address and kind.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id ("%eth0")
    kind = refusal(ip)
    if kind is None or (allow_private and kind not in ALWAYS_REFUSED):
        return ip
    raise PermanentError(
        f"{host} resolves to {ip} ({kind.replace('_', '-')}), which is not an allowed target",
        code="url_target_not_allowed",
        host=host,
        address=str(ip),
        kind=kind,
    )


def check_addresses(host: str, addresses: Iterable[str], *, allow_private: bool) -> list[IPAddress]:
    """Check every address ``host`` resolved to; one bad address refuses the host.

    All must pass, not just the first: the connection may go to any of them.
    """
    checked = [check_address(host, a, allow_private=allow_private) for a in addresses]
    if not checked:
        raise PermanentError(f"{host} resolved to no address", code="url_target_not_allowed")
    return checked


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address, the one traffic ends up at
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
