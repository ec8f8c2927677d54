"""URL and resolved-address checks that guard outbound fetches."""

from __future__ import annotations

import ipaddress

import pytest

from jobrunner.errors import PermanentError
from jobrunner.pipelines.urlcheck import check_address, check_addresses, parse_url, refusal


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port"),
    [
        ("http://example.com/a?b=1", "http", "example.com", 80),
        ("HTTPS://Example.COM", "https", "example.com", 443),
        ("https://example.com:8443/", "https", "example.com", 8443),
        ("http://[::1]:8080/", "http", "::1", 8080),
        ("http://user:pw@10.0.0.1/", "http", "10.0.0.1", 80),
    ],
)
def test_parse_url(url: str, scheme: str, host: str, port: int) -> None:
    target = parse_url(url)
    assert (target.scheme, target.host, target.port, target.url) == (scheme, host, port, url)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)", "example.com/x", ""]
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(PermanentError) as info:
        parse_url(url)
    assert info.value.code == "url_scheme_not_allowed"


@pytest.mark.parametrize(
    "url",
    ["http:///path", "http://example.com:99999/", "http://exa mple.com/", "http://a/\r\nX: y"],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(PermanentError) as info:
        parse_url(url)
    assert info.value.code == "url_invalid"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link_local"),
        ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not_global"),
        # IPv6 forms that carry an IPv4 address are judged by that address
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link_local"),
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("64:ff9b::a00:1", "private"),  # NAT64
    ],
)
def test_refusal_kinds(address: str, kind: str | None) -> None:
    assert refusal(ipaddress.ip_address(address)) == kind


def test_private_target_refused_unless_allowed() -> None:
    with pytest.raises(PermanentError) as info:
        check_address("db.internal", "10.0.0.5", allow_private=False)
    err = info.value
    assert err.code == "url_target_not_allowed"
    assert err.details == {"host": "db.internal", "address": "10.0.0.5", "kind": "private"}
    assert "db.internal resolves to 10.0.0.5 (private)" in str(err)
    assert check_address("db.internal", "10.0.0.5", allow_private=True) == ipaddress.ip_address(
        "10.0.0.5"
    )
    assert str(check_address("localhost", "::ffff:127.0.0.1", allow_private=True)) == (
        "::ffff:7f00:1"
    )


@pytest.mark.parametrize("address", ["0.0.0.0", "224.0.0.1", "240.0.0.1", "::"])
def test_never_useful_targets_refused_even_when_private_allowed(address: str) -> None:
    with pytest.raises(PermanentError) as info:
        check_address("h", address, allow_private=True)
    assert info.value.code == "url_target_not_allowed"


def test_zone_id_is_ignored() -> None:
    with pytest.raises(PermanentError, match="link-local"):
        check_address("h", "fe80::1%eth0", allow_private=False)


def test_every_address_must_pass() -> None:
    assert len(check_addresses("h", ["8.8.8.8", "8.8.4.4"], allow_private=False)) == 2
    with pytest.raises(PermanentError, match=r"127\.0\.0\.1"):
        check_addresses("h", ["8.8.8.8", "127.0.0.1"], allow_private=False)
    with pytest.raises(PermanentError, match="no address"):
        check_addresses("h", [], allow_private=True)
