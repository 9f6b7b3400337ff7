"""The SSRF decisions (pure): allow-list, address classes, IPv6 forms, odd IP spellings."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from service.settings import Settings
from service.tools.ssrf import decide_host, decide_target, parse_allowlist

PUBLIC = ipaddress.ip_address("93.184.216.34")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


def test_an_empty_list_disables_tools() -> None:
    allow = parse_allowlist([])
    assert not allow.enabled
    assert decide_host("api.example.com", allow).reason == "tools_disabled"


def test_bad_entries_are_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.1/8'"):
        parse_allowlist(["10.0.0.1/8"])
    with pytest.raises(ValueError, match="not a host name or CIDR"):
        parse_allowlist(["bad host!"])


def test_only_listed_names_are_called() -> None:
    allow = parse_allowlist(["api.example.com"])
    assert decide_host("API.Example.com.", allow).reason is None
    assert decide_host("evil.example.com", allow).reason == "host_not_allowed"
    assert decide_target("api.example.com", [PUBLIC], allow).address == PUBLIC


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.10.10",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
    ],
)
def test_a_listed_name_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    allow = parse_allowlist(["api.example.com"])
    decision = decide_target("api.example.com", [ipaddress.ip_address(address)], allow)
    assert decision.reason == "private_address"
    assert decision.address is None


def test_a_dns_name_resolving_to_loopback_is_refused_unless_a_cidr_allows_it() -> None:
    assert decide_target("localhost", [LOOPBACK], parse_allowlist(["localhost"])).reason == (
        "private_address"
    )
    allowed = parse_allowlist(["localhost", "127.0.0.0/8"])
    assert decide_target("localhost", [LOOPBACK], allowed).address == LOOPBACK


def test_every_resolved_address_must_pass() -> None:
    """A name answering with a public and a private address (rebinding) is refused."""
    allow = parse_allowlist(["api.example.com"])
    assert decide_target("api.example.com", [PUBLIC, LOOPBACK], allow).reason == "private_address"
    assert decide_target("api.example.com", [], allow).reason == "resolve_failed"


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe"],
)
def test_metadata_addresses_are_never_called_even_when_listed(address: str) -> None:
    allow = parse_allowlist(["169.254.0.0/16", "fd00::/8", "::ffff:0:0/96", "metadata.internal"])
    literal = address
    assert decide_host(literal, allow).reason == "metadata_address"
    ip = ipaddress.ip_address(address)
    assert decide_target("metadata.internal", [ip], allow).reason == "metadata_address"


@pytest.mark.parametrize(
    "host", ["10.0.0.5", "[::1]", "::ffff:127.0.0.1", "192.168.0.1", "[fd00::1]"]
)
def test_ip_literals_must_be_inside_a_listed_cidr(host: str) -> None:
    allow = parse_allowlist(["api.example.com", "203.0.113.0/24"])
    assert decide_host(host, allow).reason == "host_not_allowed"


def test_a_listed_cidr_allows_private_literals() -> None:
    allow = parse_allowlist(["10.20.0.0/16", "::1"])
    assert decide_host("10.20.3.4", allow).address == ipaddress.ip_address("10.20.3.4")
    assert decide_host("[::1]", allow).address == ipaddress.ip_address("::1")
    assert decide_host("10.21.0.1", allow).reason == "host_not_allowed"


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "017700000001"]
)
def test_non_canonical_ip_spellings_are_refused(host: str) -> None:
    allow = parse_allowlist(["127.0.0.0/8", "api.example.com"])
    assert decide_host(host, allow).reason == "ambiguous_address"


def test_zoned_ipv6_addresses_are_refused() -> None:
    allow = parse_allowlist(["fe80::/10"])
    assert decide_host("fe80::1%eth0", allow).reason is not None


def test_the_setting_is_a_comma_separated_list_checked_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOOL_ALLOWED_HOSTS", " orders.example.com , 10.20.0.0/16 ")
    assert Settings().tool_allowed_hosts == ["orders.example.com", "10.20.0.0/16"]
    monkeypatch.setenv("TOOL_ALLOWED_HOSTS", "")
    assert Settings().tool_allowed_hosts == []
    monkeypatch.setenv("TOOL_ALLOWED_HOSTS", "orders.example.com,10.0.0.1/8")
    with pytest.raises(ValidationError, match="TOOL_ALLOWED_HOSTS entry"):
        Settings()
