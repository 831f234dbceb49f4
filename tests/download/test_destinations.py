"""Which addresses a fetch to another origin than the remote's may reach: public ones only, unless allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendingops import PendingArtifact, RemoteConfig
from pendingops.download.destinations import PrivateDestination, PublicResolver, non_public_kind
from pendingops.download.fetcher import DownloadError, Fetcher
from tests.remote_server import RemoteServer

#: networks no fetch may reach without leave, with the kind each is reported as
NON_PUBLIC = {
    "127.0.0.0/8": "a loopback",
    "10.0.0.0/8": "a private",
    "172.16.0.0/12": "a private",
    "192.168.0.0/16": "a private",
    "169.254.0.0/16": "a link-local",
    "100.64.0.0/10": "a shared (carrier-grade NAT)",
    "224.0.0.0/4": "a multicast",
    "::1/128": "a loopback",
    "fc00::/7": "a private",
    "fe80::/10": "a link-local",
    "ff00::/8": "a multicast",
}
PUBLIC = ["1.1.1.1", "8.8.8.8", "93.184.216.34", "151.101.0.223", "2606:4700:4700::1111", "2a00:1450:4001:81c::200e"]


def addresses_in(network: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda offset: str(net.network_address + offset))


@given(st.sampled_from(sorted(NON_PUBLIC)).flatmap(lambda net: st.tuples(st.just(net), addresses_in(net))))
def test_every_address_of_a_non_public_network_is_refused_with_its_kind(found: tuple[str, str]) -> None:
    network, address = found
    assert non_public_kind(address) == NON_PUBLIC[network]


@given(st.sampled_from(["127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10"]).flatmap(addresses_in))
def test_an_ipv4_address_wrapped_in_ipv6_is_judged_by_the_ipv4_one(address: str) -> None:
    v4 = ipaddress.IPv4Address(address)
    wrapped = [f"::ffff:{v4}", f"64:ff9b::{v4}", str(ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80)))]
    assert {non_public_kind(w) for w in wrapped} == {non_public_kind(address)}


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert non_public_kind(address) is None


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_the_unspecified_address_is_refused(address: str) -> None:
    assert non_public_kind(address) == "an unspecified"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "0.0.0.0", "169.254.169.254", "10.0.0.5", "100.64.0.1", "[::ffff:127.0.0.1]", "[fe80::1]"],
)
def test_an_ip_literal_of_another_origin_is_refused_before_any_connection(storage, host: str) -> None:
    async def scenario() -> None:
        async with RemoteServer({"f": b"data"}) as own:
            remote = RemoteConfig(url=own.manifest_url, retries=3, connect_timeout=5.0)
            async with Fetcher(remote, storage) as fetcher:
                with pytest.raises(DownloadError) as refused:
                    await fetcher.fetch(PendingArtifact(url=f"http://{host}:9/secret", relative_path="f"))
            assert "refused: " in str(refused.value) and "pass --allow-private-destinations" in str(refused.value)
            assert refused.value.retryable is False  # refused once, never retried

    asyncio.run(scenario())


def test_the_remotes_own_origin_is_allowed_wherever_it_lives(storage) -> None:
    async def scenario() -> None:
        async with RemoteServer({"f": b"data"}) as own, Fetcher(RemoteConfig(url=own.manifest_url), storage) as fetcher:
            assert await fetcher.fetch_bytes(own.base_url + "f", max_size=100) == b"data"

    asyncio.run(scenario())


def test_another_origin_on_loopback_is_reached_only_when_allowed(storage) -> None:
    async def scenario() -> None:
        async with RemoteServer({"f": b"data"}) as own, RemoteServer({"f": b"other"}) as other:
            url = other.base_url + "f"
            async with Fetcher(RemoteConfig(url=own.manifest_url), storage) as fetcher:
                with pytest.raises(DownloadError, match=r"refused: 127\.0\.0\.1 is a loopback address"):
                    await fetcher.fetch_bytes(url, max_size=100)
            assert other.requests["f"] == 0
            allowed = RemoteConfig(url=own.manifest_url, allow_private_destinations=True)
            async with Fetcher(allowed, storage) as fetcher:
                assert await fetcher.fetch_bytes(url, max_size=100) == b"other"
            assert other.requests["f"] == 1

    asyncio.run(scenario())


def test_the_resolver_refuses_a_name_that_resolves_to_a_private_address_and_spares_the_proxies() -> None:
    async def scenario() -> None:
        resolver = PublicResolver(exempt=[("localhost", 3128)])
        try:
            with pytest.raises(PrivateDestination, match=r"\(host localhost\) is a loopback address"):
                await resolver.resolve("localhost", 80, socket.AF_INET)
            [answer] = await resolver.resolve("localhost", 3128, socket.AF_INET)  # the operator's proxy
            assert answer["host"] == "127.0.0.1"
        finally:
            await resolver.close()

    asyncio.run(scenario())
