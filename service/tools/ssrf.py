"""Which tool endpoints may be called: the SSRF decisions (pure; resolving is in ``http_call``).

::

    host ──decide_host──> allowed by name / by CIDR, or a reason
    resolved addresses ──decide_addresses──> the one address to connect to, or a reason

Only hosts named in TOOL_ALLOWED_HOSTS (exact names, or IP literals inside a listed
CIDR) are called. Every address a name resolves to is checked: loopback, link-local,
private, unique-local, unspecified, multicast and reserved addresses are refused unless
a listed CIDR contains them; the cloud metadata addresses are refused always, even when
listed. IPv4-mapped, NAT64 and 6to4 IPv6 forms are checked as the IPv4 address they
carry. Numeric host spellings other than canonical dotted quads (``2130706433``,
``0177.0.0.1``, ``0x7f.1``) are refused: resolvers read them differently.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "METADATA_ADDRESSES",
    "Allowlist",
    "IPAddress",
    "TargetDecision",
    "assess_address",
    "decide_host",
    "decide_target",
    "normalise_host",
    "parse_allowlist",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance metadata endpoints (AWS/GCP/Azure/OpenStack; AWS over IPv6): never called.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


@dataclass(frozen=True)
class Allowlist:
    """TOOL_ALLOWED_HOSTS parsed: exact host names, and networks (IP literals are /32, /128)."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @property
    def enabled(self) -> bool:
        """Whether any tool may be called at all (an empty list disables tools)."""
        return bool(self.names or self.networks)

    def contains(self, address: IPAddress) -> bool:
        """Whether a listed network holds `address`."""
        return any(address.version == n.version and address in n for n in self.networks)


@dataclass(frozen=True)
class TargetDecision:
    """Where to connect, or why not: `reason` is a metric label, `detail` a sentence."""

    address: IPAddress | None = None
    reason: str | None = None
    detail: str = ""


def parse_allowlist(entries: Iterable[str]) -> Allowlist:
    """Host names and CIDRs (or single IPs); ValueError naming an entry that is neither."""
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        if any(c in entry for c in ":/") or _NUMERIC_LABEL.match(entry.rsplit(".", 1)[-1]):
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=True))
            except ValueError as error:
                raise ValueError(f"TOOL_ALLOWED_HOSTS entry {raw!r}: {error}") from error
            continue
        name = normalise_host(entry)
        if not _NAME.match(name):
            raise ValueError(f"TOOL_ALLOWED_HOSTS entry {raw!r} is not a host name or CIDR")
        names.add(name)
    return Allowlist(frozenset(names), tuple(networks))


def normalise_host(host: str) -> str:
    """Lower case, without IPv6 brackets or a trailing dot."""
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def decide_host(host: str, allow: Allowlist) -> TargetDecision:
    """Whether `host` (from the tool's URL) may be called before resolving it.

    Returns a decision with `address` set for IP literals, with neither set for an
    allowed name (resolve it, then :func:`decide_target`), or with `reason`.
    """
    if not allow.enabled:
        return TargetDecision(reason="tools_disabled", detail="tools are disabled on this service")
    name = normalise_host(host)
    if "%" in name:
        return TargetDecision(reason="ambiguous_address", detail="zoned addresses are refused")
    literal = _literal(name)
    if literal is None and _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        return TargetDecision(
            reason="ambiguous_address", detail=f"host {name!r} is not a canonical IP address"
        )
    if literal is not None:
        if not allow.contains(literal):
            return TargetDecision(reason="host_not_allowed", detail="host is not allowed")
        return decide_target(name, [literal], allow)
    if name not in allow.names:
        return TargetDecision(reason="host_not_allowed", detail=f"host {name!r} is not allowed")
    return TargetDecision()


def _carried(address: IPAddress) -> list[IPAddress]:
    """`address` and any IPv4 address an IPv6 form carries."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def assess_address(address: IPAddress, allow: Allowlist) -> str | None:
    """Why connecting to `address` is refused (a reason label), or None."""
    forms = _carried(address)
    if any(form in METADATA_ADDRESSES for form in forms):
        return "metadata_address"
    if any(allow.contains(form) for form in forms):
        return None
    if any(not form.is_global or form.is_multicast for form in forms):
        return "private_address"
    return None


def decide_target(host: str, addresses: Sequence[IPAddress], allow: Allowlist) -> TargetDecision:
    """The address to connect to: every resolved address must pass (no rebinding mix)."""
    if not addresses:
        return TargetDecision(reason="resolve_failed", detail=f"host {host!r} did not resolve")
    for address in addresses:
        reason = assess_address(address, allow)
        if reason == "metadata_address":
            return TargetDecision(reason=reason, detail="cloud metadata addresses are never called")
        if reason is not None:
            return TargetDecision(
                reason=reason, detail=f"host {host!r} resolves to a non-public address"
            )
    return TargetDecision(address=addresses[0])
