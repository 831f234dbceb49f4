"""Mutants of pendingops/maintenance/: export, verify and repair, orphans, lifecycle."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T

MUTANTS: tuple[Mutant, ...] = (
    # -- 3: one writer per repository ----------------------------------------------------------------
    Mutant(
        id="orphans-do-not-wait",
        guarantee="3 one writer / orphans",
        file="pendingops/maintenance/orphans.py",
        why="orphan cleanup takes the store lock shared, so it runs during a sync and removes what it found",
        old="""    with StoreLock(db, shared=False) as lock:""",
        new="""    with StoreLock(db, shared=True) as lock:""",
        tests=("tests/maintenance/test_orphans.py::test_orphan_cleanup_waits_for_a_sync_that_found_orphans",),
        databases="both",
    ),
    # -- 4: every remote is hostile; 5: secrets -------------------------------------------------------
    Mutant(
        id="export-follows-symlinks",
        guarantee="4 nothing written outside DEST",
        file="pendingops/maintenance/export.py",
        why="export opens folders following symlinks: a symlinked folder inside DEST leads outside it",
        old="""_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC""",
        new="""_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC""",
        tests=("tests/maintenance/test_export.py::test_export_refuses_a_symlinked_folder_inside_dest",),
    ),
    # -- any reactivex operator composes with ours ----------------------------------------------------
    Mutant(
        id="orphans-of-old-versions",
        guarantee="orphans never remove referenced content",
        file="pendingops/maintenance/orphans.py",
        why="content only old versions hold counts as an orphan (referenced = in a current version)",
        old="""    return _none(_rc.c.id, _rc.c.content_id == _content.c.id)""",
        new="""    return _none(_rc.c.id, _rc.c.content_id == _content.c.id, _rc.c.version_removed.is_(None))""",
        tests=("tests/maintenance/test_orphans.py::test_old_versions_content_is_not_an_orphan",),
    ),
    # -- review fixes: versions, locks, immutability, orphans (issue: correctness and scale) ---------
    Mutant(
        id="orphans-dry-run-undercounts",
        guarantee="a dry run reports what the real run does",
        file="pendingops/maintenance/orphans.py",
        why="the dry run counts only artifacts no content links, not those only orphaned content links",
        old="""    if dry_run:
        links.append(""",
        new="""    if False:
        links.append(""",
        tests=("tests/maintenance/test_orphans.py::test_content_of_a_failed_sync_is_removed_with_its_files",),
    ),
    Mutant(
        id="orphans-anti-join",
        guarantee="6 cost follows the change (orphan cleanup linear)",
        file="pendingops/maintenance/orphans.py",
        why="PostgreSQL plans NOT EXISTS as a hash anti-join over every membership row, once per window",
        old="""    return select(column).where(*where).limit(1).scalar_subquery().is_(None)""",
        new="""    return ~exists().where(*where)""",
        tests=("tests/db/test_query_plans.py::test_postgresql_orphan_checks_probe_the_membership_index_per_window",),
        databases="postgresql",
    ),
    # -- storage ownership and repair -----------------------------------------------------------------
    Mutant(
        id="orphans-remove-foreign-strays",
        guarantee="a storage belongs to one database",
        file="pendingops/maintenance/orphans.py",
        why="stray files written before a shared legacy storage was adopted are removed (another database's files)",
        old="""            if ownership.may_be_foreign(storage, location):""",
        new="""            if False:""",
        tests=("tests/storage/test_owner.py::test_the_issue_scenario_a_legacy_shared_storage_keeps_the_other_databases_files",),
    ),
    Mutant(
        id="repair-without-fetching",
        guarantee="verify --repair restores the recorded bytes",
        file="pendingops/maintenance/repair.py",
        why="an artifact is reported repaired without being fetched again",
        old="""    if await asyncio.to_thread(check_artifact, storage, row.location, sha256, row.size) is None:""",
        new="""    if True:""",
        tests=("tests/maintenance/test_repair.py::test_bad_and_missing_artifacts_are_fetched_again",),
    ),
    # -- deb: Debian archives (chain of trust, hostile indexes, verbatim or own dists/) ---------------
    Mutant(
        id="export-keeps-replaced-files",
        guarantee="deb: export writes the same tree as serve",
        file="pendingops/maintenance/export.py",
        why="an export of our own dists/ keeps the stored upstream files there (apt reads the upstream's InRelease)",
        old="""            if page.files:""",
        new="""            if False:""",
        tests=(T + "test_apt.py::test_apt_gets_an_export_from_a_static_web_server",),
    ),
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="export-links-absolute",
        guarantee="exports are servable as they are",
        file="pendingops/maintenance/export.py",
        why="an export's universe links to file:// URLs of the machine that wrote it",
        old="""result.version, "./", stored_only=True)""",
        new="""result.version, dest.absolute().as_uri() + "/", stored_only=True)""",
        also=((""" replace(version, base_url="../" * len(folders) or "./")""", """ version"""),),
        tests=("tests/maintenance/test_export_served.py",),
    ),
    Mutant(
        id="verify-names-only-the-digest",
        guarantee="verify names where a bad file is used",
        file="pendingops/maintenance/artifact_uses.py",
        why="verify names only the sha256 of a damaged file, not its repository and path",
        old="""        .where(_artifact.c.sha256 == sha256, _rc.c.version_removed.is_(None))""",
        new="""        .where(_artifact.c.sha256 == sha256, _rc.c.version_removed.is_(None), _rc.c.id < 0)""",
        tests=("tests/cli/test_papercuts_plugins.py::test_verify_names_the_repository_and_path_of_a_bad_file",),
    ),
    Mutant(
        id="export-leaves-its-half",
        guarantee="a failed export leaves DEST as it was",
        file="pendingops/maintenance/export.py",
        why="an export cut by a full destination or an unreadable stored file leaves what it wrote in DEST",
        old="""            written.undo(root)""",
        new="""            pass""",
        tests=(
            "tests/maintenance/test_storage_faults.py::test_a_full_destination_is_named_and_left_as_it_was",
            "tests/maintenance/test_storage_faults.py::"
            "test_a_stored_file_replaced_by_a_folder_fails_the_export_cleanly_and_repair_puts_it_back",
        ),
    ),
    Mutant(
        id="repair-stops-on-a-folder",
        guarantee="verify --repair quarantines what it cannot repair",
        file="pendingops/maintenance/repair.py",
        why="a folder where a stored file belongs is left in place: the repair aborts or reports no quarantine",
        old="""    aside = await asyncio.to_thread(_move_folder_aside, storage, row.location, sha256)""",
        new="""    aside = None""",
        tests=(
            "tests/maintenance/test_storage_faults.py::"
            "test_a_stored_file_replaced_by_a_folder_fails_the_export_cleanly_and_repair_puts_it_back",
        ),
    ),
    Mutant(
        id="s3-repair-keeps-damaged-object",
        guarantee="verify --repair puts the recorded bytes back",
        file="pendingops/maintenance/repair.py",
        why="on S3 the damaged object stays: the conditional put of the fetched bytes keeps what is there",
        old="""        await asyncio.to_thread(storage.delete, row.location)  # again: the damaged one goes first""",
        new="""        pass""",
        tests=("tests/maintenance/test_storage_faults.py::test_repair_on_s3_replaces_a_damaged_object",),
    ),
    # -- seams of the merge: a plugin step reads a file written in a batch -------------------------
    Mutant(
        id="stats-not-refreshed-after-rollback",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/maintenance/lifecycle.py",
        why="a rollback that brought back hundreds of membership rows leaves their statistics as they were",
        old="""    refresh_statistics(db, {"repository_content": done.added + done.removed})""",
        new="""    pass""",
        tests=("tests/db/test_statistics.py::test_a_rollback_and_retention_refresh_the_membership_statistics",),
        databases="both",
    ),
    Mutant(
        id="stats-retention-uncounted",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/maintenance/lifecycle.py",
        why="retention counts no changed rows: the membership statistics still describe the removed versions",
        old="""    changed.append(sql.membership_changes(conn, repo_id, numbers))""",
        new="""    changed.append(0)""",
        tests=("tests/db/test_statistics.py::test_a_rollback_and_retention_refresh_the_membership_statistics",),
        databases="both",
    ),
    Mutant(
        id="stats-not-refreshed-after-orphans",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/maintenance/orphans.py",
        why="an orphan cleanup that removed most content leaves the planner believing it is still there",
        old="""    refresh_statistics(db, gone | {"artifact": report.artifacts})""",
        new="""    pass""",
        tests=("tests/db/test_statistics.py::test_an_orphan_cleanup_refreshes_the_statistics_of_what_it_removed",),
        databases="both",
    ),
)
