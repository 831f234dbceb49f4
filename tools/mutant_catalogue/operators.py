"""Mutants of pendingops/operators/: the stock operators, known digests, unchanged units."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_DECL, T_RELEASE2, T_UNCHANGED

MUTANTS: tuple[Mutant, ...] = (
    # -- 2: a declared digest is checked on every path that adopts bytes ----------------------------
    Mutant(
        id="known-digest-guesses",
        guarantee="2 content is immutable",
        file="pendingops/operators/_known_digests.py",
        why="a url that served different files over time gets one of their digests instead of a download",
        old="""        if len({digest for digest, _ in found}) != 1:""",
        new="""        if not found:""",
        tests=("tests/plugins/test_cookbook.py::test_tarball_replaced_at_the_same_url_is_found_by_downloading",),
    ),
    # -- 6: cost follows the change; bound variables ------------------------------------------------
    Mutant(
        id="associate-per-unit",
        guarantee="6 cost follows change",
        file="pendingops/operators/_associate.py",
        why="saved content is added to the version one statement per unit",
        old="added = associate_content(conn, ctx.db, ctx.repository_id, ctx.version, new)",
        new="added = sum(associate_content(conn, ctx.db, ctx.repository_id, ctx.version, [c]) for c in new)",
        tests=("tests/db/test_statements.py::test_a_whole_sync_costs_at_most_20_statements_per_thousand_units",),
    ),
    # -- failed units, mirror, window and byte budget ------------------------------------------------
    Mutant(
        id="failed-stored-unit-added",
        guarantee="failed unit never added",
        file="pendingops/operators/_associate.py",
        why="a failed unit that already has a content id (content stored before) is associated",
        old="""    return not unit.failed or (ctx.mirror and unit.in_base)""",
        new="""    return True""",
        also=(
            (
                """    new = [u.content_id for u in units if not u.failed and not u.in_base]""",
                """    new = [u.content_id for u in units if not u.in_base]""",
            ),
        ),
        tests=(T_DECL + "test_a_failed_unit_whose_content_is_already_stored_is_never_added",),
    ),
    Mutant(
        id="failed-base-unit-removed",
        guarantee="mirror keeps failed base unit",
        file="pendingops/operators/_associate.py",
        why="a mirror sync declares only the units that succeeded, so it removes a failed one the base had",
        old="""        declare_content(conn, ctx.db, ctx.version, [u.content_id for u in units])""",
        new="""        declare_content(conn, ctx.db, ctx.version, [u.content_id for u in units if not u.failed])""",
        tests=(T_DECL + "test_mirror_keeps_a_failed_unit_the_previous_version_had",),
    ),
    # -- review fixes: versions, locks, immutability, orphans (issue: correctness and scale) ---------
    Mutant(
        id="disk-full-skipped",
        guarantee="outages: a full disk stops the sync",
        file="pendingops/operators/_stage.py",
        why="a full storage fails one unit at a time, so a skip policy makes a version without them",
        old="""                    except SYNC_STOPPING:
                        raise  # every unit after it""",
        new="""                    except SYNC_STOPPING as exc:
                        unit.fail(stage, describe_error(exc))  # every unit after it""",
        tests=("tests/test_disk_full.py",),
    ),
    # -- storage ownership and repair -----------------------------------------------------------------
    Mutant(
        id="missing-file-present",
        guarantee="a sync never takes a missing file for present",
        file="pendingops/operators/_dedup.py",
        why="an artifact row whose file is gone links the unit, which is then exported without its file",
        old="""            artifact.artifact_id = None""",
        new="""            pass""",
        tests=("tests/maintenance/test_repair.py::test_a_resync_fetches_a_missing_file_instead_of_calling_it_present",),
    ),
    # -- tests that catch plausible bugs, round 2: where two rules meet ---------------------------------
    Mutant(
        id="saved-counts-lookup-misses",
        guarantee="the reported outcome is what was stored (progress counts)",
        file="pendingops/operators/_save.py",
        why="'saved' counts every unit its lookup did not find, though another sync wrote its row meanwhile",
        old="""written = sum(1 for unit in ready if not unit.failed and unit.content_id in created)""",
        new="""written = sum(1 for unit in unlinked if not unit.failed)""",
        tests=(
            "tests/operators/test_save.py::"
            "test_saved_never_counts_a_unit_whose_row_another_sync_wrote_after_its_lookup",
        ),
    ),
    # -- parsers: linear index pages, streamed project pages, PEP 700 pages, JSON exports, adopted counts --
    Mutant(
        id="adopted-left-in-download-total",
        guarantee="counters match the transfers made",
        file="pendingops/operators/_download.py",
        why="an adopted file stays in the download total, so the panel's download bar never ends full",
        old="""                ctx.progress.add_total("downloaded", -1)""",
        new="""                pass""",
        tests=("tests/operators/test_download.py::test_a_rerun_after_an_interruption_counts_stored_leftovers_as_adopted",),
    ),
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="fill-never-done",
        guarantee="a column added since content was saved is filled on resync",
        file="pendingops/operators/_save.py",
        why="stored units are linked and skipped: the new column stays NULL",
        old="""    if unit.content_id is None or unit.unfilled:""",
        new="""    if unit.content_id is None:""",
        tests=(T_RELEASE2 + "test_release_2_fills_its_new_column_for_stored_content_and_never_overwrites",),
    ),
    Mutant(
        id="batched-write-not-awaited",
        guarantee="a file on disk before its row",
        file="pendingops/operators/_save.py",
        why="save inserts a batch's rows while its small files are still queued for their batched write",
        old="""    await settle(units)  # every file the batch downloaded is in storage before a row points at it""",
        new="""    pass""",
        tests=(
            "tests/operators/test_download.py::test_a_downloaded_file_is_in_storage_before_its_row",
            "tests/test_disk_full.py::test_a_full_disk_under_batched_small_writes_fails_the_sync_and_no_row_points_at_a_missing_file",
        ),
    ),
    Mutant(
        id="leftovers-checked-per-file",
        guarantee="nothing per file on the loop that can be batched",
        file="pendingops/operators/_dedup.py",
        why="dedup's batch does not say which files storage holds: every download looks at storage first",
        old="""        artifact.in_storage = wanted[artifact.sha256] not in missing""",
        new="""        pass""",
        tests=("tests/operators/test_download.py::test_dedup_looks_for_leftover_files_in_one_batch_not_per_file",),
    ),
    # -- seams of the merge: a plugin step reads a file written in a batch -------------------------
    Mutant(
        id="enrich-before-the-write",
        guarantee="a plugin's enrich step finds the unit's downloaded files in storage",
        file="pendingops/operators/_enrich.py",
        why="a small body is written after its download: an enrich step reading it finds no file",
        old="""        await settle([unit])
        if not unit.failed:
            await fn(unit)""",
        new="""        await fn(unit)""",
        tests=("tests/plugins/test_guide.py::test_the_installed_plugin_is_listed_and_syncs_a_base_url",),
    ),
    # -- the resync's unchanged units, compared and declared in SQL -----------------------------------
    Mutant(
        id="unchanged-skips-missing-file-check",
        guarantee="a file on disk before its row",
        file="pendingops/operators/_unchanged.py",
        why="an unchanged unit whose stored file was deleted is kept without it: the version serves a missing file",
        old="""missing = await asyncio.to_thread(missing_locations, ctx.storage, locations)""",
        new="""missing = set() if True else await asyncio.to_thread(missing_locations, ctx.storage, locations)""",
        tests=(T_UNCHANGED + "test_a_unit_whose_stored_file_was_deleted_is_fetched_again",),
    ),
    Mutant(
        id="unchanged-one-stored-file-is-enough",
        guarantee="a file on disk before its row",
        file="pendingops/operators/_unchanged.py",
        why="a unit of two artifacts is kept when one of its stored files is there: the version serves the missing one",
        old="""    lacking = {index for index, _, location in found if location in missing}""",
        new=(
            "    lacking = {index for index, _, location in found if location in missing}"
            " - {i for i, _, place in found if place not in missing}"
        ),
        tests=(T_UNCHANGED + "test_one_difference_in_one_of_two_artifacts_takes_the_unit_through",),
    ),
    Mutant(
        id="unchanged-not-declared-in-mirror",
        guarantee="mirror removes, additive keeps",
        file="pendingops/operators/_unchanged.py",
        why="unchanged units are not declared in the new version: a mirror resync removes them all",
        old="""    declare_in = ctx.version if ctx.mirror else None""",
        new="""    declare_in = None""",
        tests=(
            T_UNCHANGED + "test_unchanged_units_are_declared_and_not_fetched_again",
            "tests/plugins/deb/test_resync.py::test_a_changed_package_gets_a_suite_list_that_holds_the_unchanged_ones_too",
        ),
    ),
)
