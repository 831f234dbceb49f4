"""Mutants of pendingops/download/: digests on every path that adopts bytes, retries, the fetcher's bounds."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_FAULTS, T_FETCHER

MUTANTS: tuple[Mutant, ...] = (
    # -- 2: a declared digest is checked on every path that adopts bytes ----------------------------
    Mutant(
        id="adopt-skips-other-digests",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a leftover file in storage is adopted on its sha256 and size alone (md5, sha512... unchecked)",
        old="""        if any(digests.get(name) != value for name, value in artifact.digests.items()):
            return False
        _record(artifact, size, digests)""",
        new="""        _record(artifact, size, digests)""",
        tests=(T_FETCHER + "test_a_leftover_file_is_checked_against_every_declared_digest",),
    ),
    Mutant(
        id="adopt-skips-sha256",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a leftover file is adopted when its size is right, whatever its bytes",
        old='if digests["sha256"] != artifact.sha256 or (artifact.size is not None and size != artifact.size):',
        new="if (artifact.size is not None and size != artifact.size):",
        tests=(T_FETCHER + "test_a_leftover_file_of_the_right_size_with_other_bytes_is_replaced",),
    ),
    Mutant(
        id="download-skips-sha256",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a download is checked against its size and secondary digests only, not its sha256",
        old="""    if artifact.sha256:
        expected["sha256"] = artifact.sha256
""",
        new="",
        tests=(T_FETCHER + "test_a_mismatching_body_never_produces_a_stored_file",),
    ),
    Mutant(
        id="download-accepts-short-body",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a body shorter than the declared size is accepted when its digest matches",
        old="""    if artifact.size is not None and size != artifact.size:
        raise DownloadError(""",
        new="""    if artifact.size is not None and size > artifact.size:
        raise DownloadError(""",
        tests=(T_FETCHER + "test_a_wrong_size_with_right_digest_is_rejected",),
    ),
    # -- retries only on retryable errors; outages ----------------------------------------------------
    Mutant(
        id="oversized-body-retried",
        guarantee="retries only if retryable",
        file="pendingops/download/fetcher.py",
        why="a body over its limit (a file over its declared size, an index over its cap) is fetched again, and again",
        old="""raise DownloadError(f"{_shown(url)}: {too_large}", retryable=False)""",
        new="""raise DownloadError(f"{_shown(url)}: {too_large}", retryable=True)""",
        tests=(
            T_FETCHER + "test_an_oversized_manifest_is_requested_once",
            T_FETCHER + "test_an_endless_body_is_cut_off_at_the_expected_size",
        ),
    ),
    Mutant(
        id="client-error-retried",
        guarantee="retries only if retryable",
        file="pendingops/download/fetcher.py",
        why="404 counts as transient (as some CDNs answer briefly), so missing files are asked for again",
        old="""_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})""",
        new="""_RETRYABLE_STATUS = frozenset({404, 408, 425, 429, 500, 502, 503, 504})""",
        tests=(T_FETCHER + "test_missing_file_is_404_without_retry",),
    ),
    Mutant(
        id="one-retry-too-many",
        guarantee="outages: retries bounded",
        file="pendingops/download/fetcher.py",
        why="off by one: retries=N makes N + 2 attempts",
        old="""                if not exc.retryable or tries >= self.remote.retries:""",
        new="""                if not exc.retryable or tries > self.remote.retries:""",
        tests=(T_FETCHER + "test_retries_are_bounded",),
    ),
    Mutant(
        id="connection-error-not-retried",
        guarantee="outages: transient errors retried",
        file="pendingops/download/fetcher.py",
        why="a refused or reset connection fails the unit at once instead of being retried",
        old="""raise DownloadError(f"{_shown(url)}: {type(exc).__name__}: {exc}", retryable=True) from None""",
        new="""raise DownloadError(f"{_shown(url)}: {type(exc).__name__}: {exc}", retryable=False) from None""",
        tests=(T_FAULTS + "test_a_refused_connection_is_retried",),
    ),
    Mutant(
        id="retry-after-ignored",
        guarantee="outages: Retry-After honoured",
        file="pendingops/download/fetcher.py",
        why="a server's Retry-After is ignored: an overloaded remote is asked again after the short backoff",
        old="""                delay = exc.retry_after
""",
        new="""                delay = None
""",
        tests=(T_FAULTS + "test_retry_after_is_honoured",),
    ),
    Mutant(
        id="no-read-timeout",
        guarantee="4 bounded time (outages)",
        file="pendingops/download/fetcher.py",
        why="read_timeout is not applied, so a stalled body holds a download (and the sync) indefinitely",
        old="""                    sock_read=remote.read_timeout,""",
        new="""                    sock_read=None,""",
        tests=(T_FAULTS + "test_under_the_fail_policy_a_stalled_body_fails_the_sync",),
    ),
    # -- parsers: linear index pages, streamed project pages, PEP 700 pages, JSON exports, adopted counts --
    Mutant(
        id="adopted-counted-as-downloaded",
        guarantee="counters match the transfers made",
        file="pendingops/download/fetcher.py",
        why="a leftover file adopted from storage is reported as a transfer (a rerun looks as if it fetched all)",
        old="""                    if await self._adopt_stored(artifact):
                        return False""",
        new="""                    if await self._adopt_stored(artifact):
                        return True""",
        tests=("tests/operators/test_download.py::test_a_rerun_after_an_interruption_counts_stored_leftovers_as_adopted",),
    ),
    # -- ssrf: private destinations, on-demand bounds, single flight, cooldown per file, inert answers -------
    Mutant(
        id="private-literal-unchecked",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/download/fetcher.py",
        why="an IP-literal host (which no resolver sees) or a redirect hop to one is fetched from the private network",
        old="""                check_literal(URL(target).host or "")""",
        new="""                pass""",
        tests=(
            "tests/download/test_destinations.py::test_an_ip_literal_of_another_origin_is_refused_before_any_connection",
            "tests/security/test_private_destinations.py::test_a_sync_refuses_each_private_destination_in_one_line_naming_its_host",
        ),
    ),
    Mutant(
        id="private-resolver-unused",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/download/fetcher.py",
        why="the connector resolves names with the default resolver: a name that resolves to loopback is fetched",
        old="""                resolver = PublicResolver(self._proxy_addresses())
                self._resolvers.append(resolver)""",
        new="""                pass""",
        tests=(
            "tests/security/test_private_destinations.py::test_a_sync_refuses_each_private_destination_in_one_line_naming_its_host",
        ),
    ),
    Mutant(
        id="private-mapped-address-public",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/download/destinations.py",
        why="an IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged as IPv6, so a private IPv4 one slips through",
        old="""    if address.ipv4_mapped is not None:
        return address.ipv4_mapped""",
        new="""    if False:
        return address.ipv4_mapped""",
        tests=(
            "tests/download/test_destinations.py::test_an_ipv4_address_wrapped_in_ipv6_is_judged_by_the_ipv4_one",
            "tests/download/test_destinations.py::test_an_ip_literal_of_another_origin_is_refused_before_any_connection",
        ),
    ),
    # -- the seams between features: the shortcut and the storage, outage output, interrupted counts ---
    Mutant(
        id="netrc-ignored",
        guarantee="credentials come from netrc or the environment",
        file="pendingops/download/fetcher.py",
        why="the fetcher never reads netrc nor the environment: a remote behind a login cannot be queued",
        old="""            found = credentials_for(remote.url)""",
        new="""            found = None""",
        tests=("tests/download/test_credentials.py",),
    ),
    Mutant(
        id="netrc-credentials-to-every-origin",
        guarantee="4 every remote is hostile",
        file="pendingops/download/fetcher.py",
        why="credentials go with every request, so a redirect hands netrc's password to another server",
        old="""            headers = dict(self._own_headers) if own else {}""",
        new="""            headers = dict(self._own_headers)""",
        tests=("tests/download/test_credentials.py",),
    ),
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="batch-found-file-trusted",
        guarantee="2 digests on every path",
        file="pendingops/download/fetcher.py",
        why="a leftover file dedup's batched existence check found is adopted on that word, never hashed",
        old="""        digests = await asyncio.to_thread(_hash_stored, self.storage, location, artifact.digests)""",
        new="""        if artifact.in_storage:
            _record(artifact, artifact.size or 0, {"sha256": artifact.sha256, **artifact.digests})
            return True
        digests = await asyncio.to_thread(_hash_stored, self.storage, location, artifact.digests)""",
        tests=("tests/operators/test_download.py::test_a_leftover_the_batch_found_is_checked_before_it_is_adopted",),
    ),
    Mutant(
        id="followers-wait-for-next-chunk",
        guarantee="on_demand followers get what is written",
        file="pendingops/download/_sink.py",
        why="bytes that came while a batch was in flight wait for the next chunk: a stalled stream's followers starve",
        old="""            if self._in_flight is None:
                self._start()  # what came meanwhile, without waiting for the next chunk""",
        new="""            pass""",
        also=(("""        elif self._written is not None and self._in_flight is None:
            self._start()""", """        elif False:
            self._start()"""),),
        tests=("tests/download/test_sink.py::test_a_large_followed_streams_bytes_are_reported_without_waiting_for_the_next_chunk",),
    ),
)
