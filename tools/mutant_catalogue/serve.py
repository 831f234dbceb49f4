"""Mutants of pendingops/serve/: the content server, its conditions and ranges, on-demand fetches."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_412, T_COND, T_OD

MUTANTS: tuple[Mutant, ...] = (
    # -- review fixes: versions, locks, immutability, orphans (issue: correctness and scale) ---------
    Mutant(
        id="serve-shows-incomplete-version",
        guarantee="only complete versions are served",
        file="pendingops/serve/resolve.py",
        why="a numbered version is served before its sync finished (or after it failed)",
        old="""_COMPLETE = (_repo.c.name == bindparam("name")) & _version.c.complete""",
        new="""_COMPLETE = _repo.c.name == bindparam("name")""",
        tests=("tests/serve/test_app.py::test_a_version_being_built_is_invisible",),
    ),
    Mutant(
        id="serve-sends-before-checking",
        guarantee="a corrupt upstream file never reaches a client whole",
        file="pendingops/serve/transfer.py",
        why="on-demand bytes go to the client as they arrive, the last chunk included, before the digest is checked",
        old="""                limit = transfer.written - 1 if transfer.written > transfer.hold else 0""",
        new="""                limit = transfer.written""",
        tests=("tests/serve/test_on_demand.py::test_corrupt_upstream_bytes_never_reach_a_client_whole",),
    ),
    Mutant(
        id="serve-single-flight-dropped",
        guarantee="one upstream fetch per on-demand artifact",
        file="pendingops/serve/on_demand.py",
        why="concurrent requests for an artifact not stored each fetch it from the remote",
        old="""        if not streamed_only:
            self._in_flight[ca_id] = leader""",
        new="""        pass""",
        tests=("tests/serve/test_on_demand.py::test_concurrent_requests_cause_one_upstream_fetch",),
    ),
    Mutant(
        id="serve-no-cooldown",
        guarantee="a failing remote is skipped for the next one",
        file="pendingops/serve/on_demand.py",
        why="a remote that just failed is asked again first by the next request",
        old="""        self._failed_at[(ca_id, remote_id)] = now""",
        new="""        pass""",
        tests=(
            "tests/serve/test_on_demand.py::test_a_failing_remote_is_skipped_for_the_next_one_then_cools_down_for_that_file",
        ),
    ),
    Mutant(
        id="serve-range-not-clamped",
        guarantee="ranges answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="a range ending past the file is answered with the end asked for, not the file's",
        old="""    return start, size - 1 if stop is None else min(stop - 1, size - 1)""",
        new="""    return start, size - 1 if stop is None else stop - 1""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    # -- tests that catch plausible bugs, round 2: where two rules meet ---------------------------------
    Mutant(
        id="serve-modified-since-overrides-tag",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="a non-matching If-None-Match falls through to If-Modified-Since: a client holding another file gets 304",
        old="""    if none_match is not None:
        return any(tag.value in (_ANY, etag[1:-1]) for tag in none_match)""",
        new="""    if none_match is not None and any(tag.value in (_ANY, etag[1:-1]) for tag in none_match):
        return True""",
        tests=("tests/serve/test_conditional.py::test_if_none_match_wins_over_if_modified_since",),
    ),
    Mutant(
        id="serve-modified-since-exact-only",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Modified-Since is a 304 only for the exact Last-Modified, not for any later date",
        old="""int(last_modified.timestamp()) <= since.timestamp()""",
        new="""int(last_modified.timestamp()) == since.timestamp()""",
        tests=("tests/serve/test_conditional.py::test_if_modified_since_compares_as_not_modified_since",),
    ),
    Mutant(
        id="serve-listing-title-raw",
        guarantee="4 a remote's data is never markup in a listing",
        file="pendingops/serve/listing.py",
        why="a listing's title and heading show a folder or repository name unescaped",
        old="""        title = html.escape(self.title)""",
        new="""        title = self.title""",
        tests=("tests/serve/test_listing.py::test_every_text_in_a_listing_is_escaped_titles_included",),
    ),
    Mutant(
        id="serve-on-demand-sha256-only",
        guarantee="2 digests on every path (on_demand)",
        file="pendingops/serve/transfer.py",
        why="an on-demand fetch is checked against its sha256 only: a wrong declared sha512 or md5 is stored",
        old="""if computed.get(name, "").lower() != value.lower():""",
        new="""if name == "sha256" and computed.get(name, "").lower() != value.lower():""",
        tests=("tests/serve/test_on_demand.py::test_on_demand_checks_every_declared_digest_not_only_sha256",),
    ),
    # -- operating: serve's login and --repos, health, metrics; the reserved name ------------------
    Mutant(
        id="login-not-required",
        guarantee="serve --htpasswd: no answer without a login",
        file="pendingops/serve/operating.py",
        why="a request without valid credentials is answered as if it had them",
        old="""        if user is None:
            return web.Response(status=401""",
        new="""        if False:
            return web.Response(status=401""",
        tests=(
            "tests/serve/test_operating.py::test_everything_but_the_health_check_needs_a_login",
            "tests/cli/test_serve.py::test_serve_with_a_login_and_chosen_repositories_logs_each_request_as_json",
        ),
    ),
    Mutant(
        id="login-unknown-user-is-cheap",
        guarantee="serve --htpasswd: answer times do not tell which users exist",
        file="pendingops/serve/auth.py",
        why="an unknown user is refused at once, without the bcrypt work a known user's check costs",
        old="""    hashed = entries.get(name)
    matches = bcrypt.checkpw(password[:_BCRYPT_LIMIT], decoy if hashed is None else hashed)""",
        new="""    hashed = entries.get(name)
    if hashed is None:
        return False
    matches = bcrypt.checkpw(password[:_BCRYPT_LIMIT], hashed)""",
        tests=("tests/serve/test_auth.py::test_an_unknown_user_costs_the_same_bcrypt_work_as_a_known_one",),
    ),
    Mutant(
        id="login-decoy-cheaper",
        guarantee="serve --htpasswd: answer times do not tell which users exist",
        file="pendingops/serve/auth.py",
        why="an unknown user is checked against a hash of the lowest cost, faster than the file's entries",
        old="""    cost = costs.most_common(1)[0][0] if costs else 5""",
        new="""    cost = 4""",
        tests=("tests/serve/test_auth.py::test_an_unknown_user_costs_the_same_bcrypt_work_as_a_known_one",),
    ),
    Mutant(
        id="htpasswd-never-read-again",
        guarantee="serve --htpasswd: the file is read again when it changes",
        file="pendingops/serve/auth.py",
        why="a user removed from (or a password changed in) the file keeps getting in until the server restarts",
        old="""            if stamp == self._stamp and self._problem is None:""",
        new="""            if True:""",
        tests=(
            "tests/serve/test_auth.py::test_the_file_is_read_again_when_it_changes_and_a_broken_one_lets_nobody_in",
        ),
    ),
    Mutant(
        id="repos-filter-ignored",
        guarantee="serve --repos: other repositories are neither served nor listed",
        file="pendingops/serve/app.py",
        why="a repository outside --repos is served and listed",
        old="""(self.repositories is None or repository in self.repositories)""",
        new="""True""",
        tests=(
            "tests/serve/test_operating.py::test_only_the_repositories_given_are_served_or_listed",
            "tests/cli/test_serve.py::test_serve_with_a_login_and_chosen_repositories_logs_each_request_as_json",
        ),
    ),
    Mutant(
        id="health-ok-when-database-down",
        guarantee="/-/health: 503 naming what failed",
        file="pendingops/serve/health.py",
        why="a failed check still answers 200: a load balancer keeps sending clients to a server without database",
        old="""        if any(result != "ok" for result in results):""",
        new="""        if False:""",
        tests=("tests/serve/test_health.py::test_health_says_503_while_the_database_is_stopped_and_ok_once_it_is_back",),
        databases="postgresql",
    ),
    Mutant(
        id="health-waits-for-database",
        guarantee="/-/health: an answer in bounded time when the database hangs",
        file="pendingops/serve/health.py",
        why="the health check waits as long as the database takes: a probe times out instead of reading 503",
        old="""            await asyncio.wait_for(asyncio.shield(running), self.timeout)""",
        new="""            await asyncio.shield(running)""",
        tests=("tests/serve/test_health.py::test_health_answers_in_time_while_the_database_hangs_and_never_piles_up_checks",),
        databases="postgresql",
    ),
    Mutant(
        id="requests-not-counted",
        guarantee="/-/metrics counts every answered request",
        file="pendingops/serve/metrics.py",
        why="answered requests are timed and their bytes added, but the request counter never grows",
        old="""        counter.inc()
""",
        new="""        pass
""",
        tests=("tests/serve/test_metrics.py::test_the_request_counters_grow_with_the_real_requests",),
    ),
    Mutant(
        id="metrics-of-one-process",
        guarantee="/-/metrics counts every answered request",
        file="pendingops/serve/metrics.py",
        why="with --workers N, /-/metrics shows the counts of the process that answers it only",
        old="""        if getattr(values.ValueClass, "_multiprocess", False):""",
        new="""        if False:""",
        tests=("tests/cli/test_serve.py::test_several_server_processes_count_each_others_requests",),
    ),
    # -- ssrf: private destinations, on-demand bounds, single flight, cooldown per file, inert answers -------
    Mutant(
        id="serve-ignores-private-leave",
        guarantee="10 no fetch reaches a private address unless allowed",
        file="pendingops/serve/on_demand.py",
        why="serve fetches with the recorded settings only: a repository the operator allowed cannot be served",
        old="""        if allow_private:""",
        new="""        if False:""",
        tests=(
            "tests/security/test_private_destinations.py::test_private_destinations_the_operator_allowed_are_remembered_for_serving",
        ),
    ),
    Mutant(
        id="on-demand-size-cap-ignored",
        guarantee="4 what a remote sends costs bounded disk",
        file="pendingops/serve/on_demand.py",
        why="an on-demand file of undeclared size is bounded by the 1 GiB default, not by the remote's max_file_size",
        old="""        limit = settings.max_file_size or DEFAULT_MAX_FILE_SIZE""",
        new="""        limit = DEFAULT_MAX_FILE_SIZE""",
        tests=(T_OD + "test_an_endless_body_of_undeclared_size_stops_at_max_file_size_and_nothing_is_kept",),
    ),
    Mutant(
        id="on-demand-unbounded-concurrency",
        guarantee="4 what a remote sends costs bounded memory, disk and time",
        file="pendingops/serve/on_demand.py",
        why="every request for a file not stored starts an upstream transfer at once, however many run",
        old="""        self._slots = asyncio.Semaphore(concurrency)""",
        new="""        self._slots = asyncio.Semaphore(concurrency * 1000)""",
        tests=(T_OD + "test_upstream_fetches_are_bounded_the_rest_wait_then_get_503_with_retry_after",),
    ),
    Mutant(
        id="serve-late-arrival-fetches-again",
        guarantee="one upstream fetch per on-demand artifact",
        file="pendingops/serve/on_demand.py",
        why="a request that read the file as not stored, and looks for its fetch after that ended, fetches it again",
        old="""            if not streamed_only and await self._run(_is_stored, ca_id):""",
        new="""            if False:""",
        tests=(T_OD + "test_twenty_concurrent_first_requests_make_one_upstream_get_fifty_times_out_of_fifty",),
    ),
    Mutant(
        id="serve-range-streams-unchecked",
        guarantee="10 no byte of a file that failed its digest is sent where it can be avoided",
        file="pendingops/serve/on_demand.py",
        why="a Range on a file not stored yet is answered with the whole body as it arrives",
        old="""        ranged = hdrs.RANGE in request.headers and not streamed_only""",
        new="""        ranged = False""",
        tests=(T_OD + "test_a_range_on_a_file_not_stored_yet_waits_for_the_checked_file",),
    ),
    Mutant(
        id="verify-before-send-ignored",
        guarantee="10 no byte of a file that failed its digest is sent where it can be avoided",
        file="pendingops/serve/on_demand.py",
        why="a small file streams before it is checked: a client gets all but its last byte of a corrupt file",
        old="""        hold = 0 if large else self.verify_before_send""",
        new="""        hold = 0""",
        tests=(T_OD + "test_a_file_up_to_verify_before_send_is_checked_against_every_digest_before_its_first_byte",),
    ),
    Mutant(
        id="on-demand-checks-sha256-only",
        guarantee="2 digests on every path",
        file="pendingops/serve/transfer.py",
        why="an on-demand file is checked against its sha256 only, not every digest the remote declared",
        old="""    for name, value in source.digests.items():""",
        new="""    for name, value in list(source.digests.items())[:1]:""",
        tests=(T_OD + "test_a_file_up_to_verify_before_send_is_checked_against_every_digest_before_its_first_byte",),
    ),
    Mutant(
        id="cooldown-per-remote",
        guarantee="a failing file cools down alone",
        file="pendingops/serve/on_demand.py",
        why="one file that failed makes every file of its remote 502 for the cooldown (anyone can trigger it)",
        old="""        failed = self._failed_at.get((ca_id, remote_id))""",
        new="""        failed = max((t for (_, r), t in self._failed_at.items() if r == remote_id), default=None)""",
        tests=(T_OD + "test_after_one_file_failed_a_healthy_file_of_the_same_remote_is_served_at_once",),
    ),
    Mutant(
        id="stored-files-not-sandboxed",
        guarantee="stored files are inert in a browser",
        file="pendingops/serve/headers.py",
        why="a remote's evil.html runs in the server's origin: no Content-Security-Policy: sandbox",
        old="""    response.headers.setdefault("Content-Security-Policy", SANDBOX)""",
        new="""    pass""",
        tests=("tests/serve/test_headers.py::test_every_answer_is_inert_stored_and_fetched_files_listings_and_errors",),
    ),
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="serve-storage-failure-is-500",
        guarantee="serve: 503 before the first byte",
        file="pendingops/serve/stored.py",
        why="a file whose storage read fails is an internal error (500), not a 503 with Retry-After",
        old="""        except OSError as exc:  # StorageError, StorageUnavailable, a cut connection""",
        new="""        except ValueError as exc:""",
        tests=("tests/serve/test_storage_outage.py::test_a_file_whose_storage_read_fails_gets_503_not_a_cut_200",),
    ),
    Mutant(
        id="serve-storage-reads-queue",
        guarantee="serve: a stalled storage holds up nothing else",
        file="pendingops/serve/stored.py",
        why="with every storage thread held by a stall, a further file request queues behind it",
        old="""        return self._running >= self._threads""",
        new="""        return False""",
        tests=(
            "tests/serve/test_storage_outage.py::"
            "test_listings_index_files_and_health_answer_while_storage_reads_are_held",
        ),
    ),
    Mutant(
        id="serve-if-range-date-not-exact",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="an If-Range date later than Last-Modified honours the range (FileResponse's own rule)",
        old="""int(last_modified.timestamp()) == int(moment.timestamp())""",
        new="""int(last_modified.timestamp()) <= int(moment.timestamp())""",
        tests=("tests/serve/test_conditional.py::test_if_range_honours_the_range_only_for_this_very_file",),
    ),
    Mutant(
        id="serve-if-range-tag-skipped",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="an If-Range naming another file's tag still gets the range (FileResponse skips tags)",
        old="""        return condition == etag""",
        new="""        return True""",
        tests=("tests/serve/test_conditional.py::test_if_range_honours_the_range_only_for_this_very_file",),
    ),
    Mutant(
        id="serve-if-range-weak-tag",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Range compares weakly: a W/ tag of this file gets the range",
        old="""    if condition.startswith('"'):""",
        new="""    condition = condition.removeprefix("W/")
    if condition.startswith('"'):""",
        tests=("tests/serve/test_conditional.py::test_if_range_honours_the_range_only_for_this_very_file",),
    ),
    Mutant(
        id="serve-if-none-match-strong",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-None-Match compares strongly: a client holding the file under a W/ tag gets it again",
        old="""        return any(tag.value in (_ANY, etag[1:-1]) for tag in none_match)""",
        new="""        return any(tag.value in (_ANY, etag[1:-1]) and not tag.is_weak for tag in none_match)""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    Mutant(
        id="serve-several-ranges-refused",
        guarantee="ranges answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="several ranges, or one that does not parse, are a 416 (FileResponse's rule) instead of the whole file",
        old="""    except ValueError:  # several ranges, another unit, last before first, a number too long: ignored
        return None""",
        new="""    except ValueError:
        raise Unsatisfiable from None""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    Mutant(
        id="serve-empty-suffix-from-start",
        guarantee="ranges answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="an empty suffix (bytes=-0) is read as the whole file from byte 0, not a 416",
        old="""    if start < 0 or (start == 0 and request.headers[hdrs.RANGE].partition("=")[2].startswith("-")):""",
        new="""    if start < 0:""",
        tests=("tests/serve/test_app.py::test_head_conditional_requests_and_ranges",),
    ),
    # -- If-Match and If-Unmodified-Since (RFC 9110 13.1.1, 13.1.4, 13.2.2) ------------------------------
    Mutant(
        id="serve-if-match-weak",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Match compares weakly: a W/ tag of this file passes the precondition",
        old="""        return not any(not tag.is_weak and tag.value in (_ANY, etag[1:-1]) for tag in match)""",
        new="""        return not any(tag.value in (_ANY, etag[1:-1]) for tag in match)""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-unmodified-since-despite-if-match",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="a matching If-Match falls through to If-Unmodified-Since: an earlier date makes it a 412",
        old="""    if match is not None:
        return not any(not tag.is_weak and tag.value in (_ANY, etag[1:-1]) for tag in match)""",
        new="""    if match is not None and not any(
        not tag.is_weak and tag.value in (_ANY, etag[1:-1]) for tag in match
    ):
        return True""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-unmodified-since-inclusive",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-Unmodified-Since at exactly Last-Modified is a 412: the file was not modified since",
        old="""int(last_modified.timestamp()) > since.timestamp()""",
        new="""int(last_modified.timestamp()) >= since.timestamp()""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-304-before-412",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/conditional.py",
        why="If-None-Match is looked at before If-Match: a failed precondition is answered 304",
        old="""    if precondition_failed(request, etag, last_modified):
        return 412
    if not_modified(request, etag, last_modified):
        return 304""",
        new="""    if not_modified(request, etag, last_modified):
        return 304
    if precondition_failed(request, etag, last_modified):
        return 412""",
        tests=(
            T_COND + "test_the_conditions_decide_as_rfc_9110_s_table",
            T_412 + "[sqlite-local-1 KiB, sent at once]",
        ),
    ),
    Mutant(
        id="serve-s3-ignores-preconditions",
        guarantee="conditions answered as RFC 9110 says",
        file="pendingops/serve/stored.py",
        why="a file read through an object store skips If-Match and If-Unmodified-Since",
        old="""    status = condition_status(request, etag, last_modified)""",
        new="""    status = condition_status(request.clone(headers={}), etag, last_modified)""",
        tests=(T_412 + "[sqlite-s3-1 KiB, sent at once]",),
    ),
)
