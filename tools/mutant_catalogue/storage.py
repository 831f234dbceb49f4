"""Mutants of pendingops/storage/: the stores, their ownership and outages."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_S3_OUT, T_UNCHANGED_S3

MUTANTS: tuple[Mutant, ...] = (
    # -- storage ownership and repair -----------------------------------------------------------------
    Mutant(
        id="storage-owner-unchecked",
        guarantee="a storage belongs to one database",
        file="pendingops/storage/owner.py",
        why="another database's id in the storage's record is accepted, so its orphan cleanup removes the files",
        old="""    if recorded.database_id != mine:""",
        new="""    if False:""",
        tests=("tests/storage/test_owner.py::test_the_first_database_owns_the_storage_and_another_is_refused",),
    ),
    Mutant(
        id="legacy-storage-adopted-blindly",
        guarantee="a storage belongs to one database",
        file="pendingops/storage/owner.py",
        why="a storage holding files without an owner record is adopted by a database that has no artifacts",
        old="""        if not _has_artifacts(conn):""",
        new="""        if False:""",
        tests=("tests/storage/test_owner.py::test_a_legacy_storage_with_files_is_refused_to_a_database_without_artifacts",),
    ),
    # -- small bodies written as anonymous files ------------------------------------------------------
    Mutant(
        id="anonymous-file-keeps-damaged-file",
        guarantee="digests checked on every path (a verified body replaces what is stored)",
        file="pendingops/storage/local.py",
        why="a file already at the digest's name (damaged on disk) is kept and the write reported done",
        old="""            except FileExistsError:
                return False""",
        new="""            except FileExistsError:
                return True""",
        tests=(
            "tests/storage/test_local.py::test_put_bytes_many_replaces_a_damaged_file_of_the_same_digest_as_put_does",
        ),
    ),
    Mutant(
        id="anonymous-file-mode-unset",
        guarantee="a stored file is never more readable than the storage folder",
        file="pendingops/storage/local.py",
        why="an anonymous file keeps its creation mode instead of the storage's: put_bytes_many and put differ",
        old="""            _write_all(fd, body)
            os.fchmod(fd, self._file_mode)
            try:""",
        new="""            _write_all(fd, body)
            try:""",
        tests=("tests/storage/test_local.py::test_put_bytes_many_writes_each_body_into_place_as_put_does",),
    ),
    # -- tests that catch plausible bugs, round 2: where two rules meet ---------------------------------
    Mutant(
        id="s3-marker-overwritten",
        guarantee="7 a storage belongs to one database (S3)",
        file="pendingops/storage/s3.py",
        why="the owner record is written with a plain PUT: a second database overwrites the first's record",
        old="""Body=text.encode(), IfNoneMatch="*")""",
        new="""Body=text.encode())""",
        tests=("tests/storage/test_s3.py::test_the_ownership_marker_is_create_only",),
    ),
    Mutant(
        id="s3-missing-ignores-prefix",
        guarantee="a sync never takes a stored file for missing (S3)",
        file="pendingops/storage/s3.py",
        why="the batched missing-file check asks for keys without the storage's prefix: every stored file looks gone",
        old="""return not await self._exists(self.prefix + location)""",
        new="""return not await self._exists(location)""",
        tests=(
            "tests/storage/test_s3.py::test_the_batched_missing_check_looks_under_the_prefix",
            "tests/storage/test_s3.py::test_a_second_repository_syncing_the_same_files_on_s3_finds_every_one_stored",
            T_UNCHANGED_S3 + "test_a_resync_of_an_unchanged_remote_fetches_nothing_from_it",
        ),
    ),
    Mutant(
        id="s3-missing-answers-keys",
        guarantee="a file on disk before its row (S3)",
        file="pendingops/storage/s3.py",
        why="the batched missing-file check answers with keys (prefix included), not locations: a resync"
        " keeps an unchanged unit whose object was deleted from the bucket, and the version lacks its file",
        old="""return [location for location, gone in zip(""",
        new="""return [self.prefix + location for location, gone in zip(""",
        tests=(T_UNCHANGED_S3 + "test_a_unit_whose_object_was_deleted_from_the_bucket_is_fetched_again",),
    ),
    Mutant(
        id="storage-owner-race-unchecked",
        guarantee="7 a storage belongs to one database",
        file="pendingops/storage/owner.py",
        why="a first use whose record another database wrote first takes that record for its own and goes on",
        old="""    _check(storage, recorded, mine.database_id)
    return recorded""",
        new="""    return recorded""",
        tests=("tests/storage/test_owner.py::test_a_first_use_whose_record_another_database_wrote_first_is_refused",),
    ),
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="storage-outage-skips-units",
        guarantee="1 no short version on a storage outage",
        file="pendingops/storage/base.py",
        why="an unreachable storage fails single units: under --on-error skip the sync makes a short version",
        old="""SYNC_STOPPING = (StorageFull, StorageUnavailable)""",
        new="""SYNC_STOPPING = (StorageFull,)""",
        tests=(
            T_S3_OUT + "test_storage_down_for_good_ends_the_sync_in_one_line_and_no_short_version",
            T_S3_OUT + "test_uploads_failing_alone_stop_the_sync_rather_than_skip_units",
        ),
        databases="both",
    ),
    Mutant(
        id="s3-request-unbounded",
        guarantee="every process ends: bounded time on every storage call",
        file="pendingops/storage/s3.py",
        why="a PutObject holds its body back for a 100 Continue a stalled S3 never sends and nothing bounds"
        " the request as a whole: the upload waits for ever (each of the two bounds alone ends it)",
        old="""        client.meta.events.unregister("before-call.s3", add_expect_header)""",
        new="""        pass""",
        also=(
            (
                """            async with asyncio.timeout(limit):""",
                """            async with asyncio.timeout(None):""",
            ),
        ),
        tests=(T_S3_OUT + "test_a_small_upload_to_a_storage_that_stalls_for_good_gives_up",),
        databases="sqlite",
    ),
    Mutant(
        id="s3-request-time-unbounded",
        guarantee="every process ends: bounded time on every storage call",
        file="pendingops/storage/s3.py",
        why="nothing bounds a request as a whole: a body larger than the socket buffers, sent to a storage"
        " that stopped reading, waits for ever (no read timeout runs while a body is being sent)",
        old="""            async with asyncio.timeout(limit):""",
        new="""            async with asyncio.timeout(None):""",
        tests=(T_S3_OUT + "test_a_large_upload_to_a_storage_that_stops_reading_gives_up",),
        databases="sqlite",
    ),
    Mutant(
        id="storage-outage-not-ridden-out",
        guarantee="storage outages are ridden out",
        file="pendingops/storage/outage.py",
        why="a storage request that timed out or got 503 SlowDown fails at once instead of being retried",
        old="""            remaining = clock.seconds - (now - start)""",
        new="""            remaining = 0.0""",
        tests=(
            T_S3_OUT + "test_a_stall_longer_than_the_read_timeout_is_ridden_out",
            T_S3_OUT + "test_a_burst_of_slow_down_answers_is_ridden_out",
        ),
    ),
    Mutant(
        id="s3-no-read-timeout",
        guarantee="bounded time on storage calls",
        file="pendingops/storage/s3.py",
        why="the S3 read timeout is not set: a request on a connection that never answers waits for an hour",
        old="""            read_timeout=self.read_timeout,""",
        new="""            read_timeout=3600,""",
        tests=(T_S3_OUT + "test_a_stall_longer_than_the_read_timeout_is_ridden_out",),
    ),
    Mutant(
        id="s3-cleanup-masks-error",
        guarantee="the first error wins",
        file="pendingops/storage/s3.py",
        why="the upload's cleanup (delete of its temporary key) fails too and its error replaces the upload's",
        old="""            await self._quietly(exc, "delete_object", Key=temp_key)""",
        new="""            await self._call("delete_object", Key=temp_key)""",
        tests=(T_S3_OUT + "test_a_refused_upload_fails_with_the_upload_error_not_its_cleanup",),
    ),
    Mutant(
        id="s3-no-credentials-ridden-out",
        guarantee="messages name the storage",
        file="pendingops/storage/s3.py",
        why="every botocore error is taken for an outage: a storage with no credentials is ridden out for"
        " the retry time, then called unreachable, instead of failing at once with its reason",
        old="""        except BotoCoreError as exc:
            raise StorageError(""",
        new="""        except BotoCoreError as exc:
            raise Transient(""",
        tests=("tests/storage/test_s3.py::test_no_credentials_is_a_clear_storage_error_at_once",),
    ),
    Mutant(
        id="s3-named-by-its-object",
        guarantee="messages name the storage",
        file="pendingops/storage/s3.py",
        why="an S3 storage is named <pendingops.storage.s3.S3Storage object at 0x...> in the ownership refusal",
        old="""    def __str__(self) -> str:""",
        new="""    def _unused_str(self) -> str:""",
        tests=(T_S3_OUT + "test_the_ownership_refusal_names_the_bucket_and_prefix",),
    ),
    Mutant(
        id="work-folder-cleanup-masks-error",
        guarantee="the first error wins",
        file="pendingops/storage/work_folder.py",
        why="a plugin's cleanup in the work folder failing (read-only storage) replaces the error that caused it",
        old="""            if isinstance(first, Exception):  # the error that made it clean up""",
        new="""            if False:""",
        tests=(
            "tests/storage/test_read_only.py::test_a_cleanup_in_the_work_folder_never_masks_the_error_that_caused_it",
        ),
    ),
    Mutant(
        id="read-only-storage-raw-oserror",
        guarantee="messages name the storage",
        file="pendingops/storage/work_folder.py",
        why="a storage turned read-only ends the sync with a bare 'Read-only file system: PULP_MANIFEST'",
        old="""        if isinstance(exc, OSError) and _inside(exc.filename, path):""",
        new="""        if False:""",
        tests=("tests/storage/test_read_only.py::test_storage_read_only_at_the_end_of_a_sync_is_one_line_naming_it",),
    ),
    Mutant(
        id="s3-small-file-through-a-temp-key",
        guarantee="cost follows the change (S3 requests)",
        file="pendingops/storage/s3.py",
        why="a small file goes through a temporary key, a HEAD, a copy and a delete: 5 requests, not 2",
        old="""        if size <= self.part_size:""",
        new="""        if False:""",
        tests=(
            "tests/storage/test_s3_requests.py::"
            "test_a_small_file_is_stored_in_one_put_to_its_address_with_at_most_two_requests",
        ),
    ),
)
