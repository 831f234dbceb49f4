"""Which addresses a fetch may connect to: no private network unless the operator allows it.

A remote's data names URLs, and a hostile remote names an internal service (``http://10.0.0.5/``,
a name that resolves to 127.0.0.1, a redirect to either). A fetch to any origin but the remote's
own connects only to public addresses: the check runs in the resolver the HTTP client connects
through, which connects to exactly the addresses the resolver returns, so a name that answers
differently the second time (DNS rebinding) gains nothing; IP-literal hosts, which no resolver
sees, are checked before the request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp import DefaultResolver
from aiohttp.abc import AbstractResolver, ResolveResult

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64's well-known prefix)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


class PrivateDestination(Exception):
    """A fetch would connect to a non-public address the operator did not allow."""

    def __init__(self, address: str, host: str, kind: str) -> None:
        shown = address if address == host else f"{address} (host {host})"
        super().__init__(f"refused: {shown} is {kind} address; pass --allow-private-destinations to allow it")


def non_public_kind(text: str) -> str | None:
    """What kind of non-public address ``text`` is ("a private", "a loopback"...), None if public.

    An IPv6 address embedding an IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 one.
    """
    address: Address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        address = _embedded_ipv4(address) or address
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_unspecified:
        return "an unspecified"
    if address.is_multicast:
        return "a multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT)"
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "a private"
    if address.is_reserved or not address.is_global:
        return "a reserved"
    return None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_literal(host: str) -> None:
    """Raise PrivateDestination when ``host`` is an IP address that is not public."""
    if is_ip_literal(host):
        kind = non_public_kind(host)
        if kind is not None:
            raise PrivateDestination(host, host, kind)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class PublicResolver(AbstractResolver):
    """Resolves names as aiohttp's default resolver does, and refuses any non-public answer.

    ``exempt`` holds the (host, port) pairs of the configured proxies: the operator chose them,
    and a request through a proxy resolves the proxy's name here, not the target's.
    """

    def __init__(self, exempt: Iterable[tuple[str, int]] = ()) -> None:
        self._inner = DefaultResolver()
        self._exempt = frozenset((host.lower(), port) for host, port in exempt)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if (host.lower(), port) in self._exempt:
            return found
        for result in found:
            kind = non_public_kind(result["host"])
            if kind is not None:
                raise PrivateDestination(result["host"], host, kind)
        return found

    async def close(self) -> None:
        await self._inner.close()
