"""Mutants of pendingops/db/: versions, locks, lookups, the SQL of a sync."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_CONTEXT, T_RELEASE2, T_UNCHANGED

MUTANTS: tuple[Mutant, ...] = (
    # -- 2: a declared digest is checked on every path that adopts bytes ----------------------------
    Mutant(
        id="stored-content-drops-artifact",
        guarantee="2 content is immutable",
        file="pendingops/db/lookups.py",
        why="stored content declared with an artifact it lacks is linked without it, the artifact dropped",
        old="""    if declared != set(stored.files):""",
        new="""    unit.artifacts[:] = [a for a in unit.artifacts if a.relative_path in stored.files]
    if False:""",
        tests=(
            "tests/operators/test_save.py::test_stored_content_declared_with_a_new_artifact_fails_instead_of_losing_it",
        ),
    ),
    # -- 1: a version is visible if and only if its sync succeeded -----------------------------------
    Mutant(
        id="latest-includes-incomplete",
        guarantee="1 visible iff success",
        file="pendingops/db/versions.py",
        why="the latest version is the highest number, complete or not",
        old="select(func.max(_version.c.number)).where(_version.c.repository_id == repository_id, _version.c.complete)",
        new="select(func.max(_version.c.number)).where(_version.c.repository_id == repository_id)",
        tests=("tests/db/test_versions.py::test_an_incomplete_version_is_invisible_and_undone_whole",),
    ),
    # -- 3: one writer per repository ----------------------------------------------------------------
    Mutant(
        id="sqlite-repository-lock-shared",
        guarantee="3 one writer (SQLite)",
        file="pendingops/db/locks.py",
        why="the file lock is always taken shared: two syncs of one repository run at once",
        old="""        mode = fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX""",
        new="""        mode = fcntl.LOCK_SH""",
        tests=(
            "tests/test_concurrency.py::test_two_syncs_of_one_repository_never_interleave",
            "tests/db/test_locks.py::test_a_repository_lock_is_exclusive_and_the_store_lock_shared",
        ),
    ),
    Mutant(
        id="postgres-repository-lock-shared",
        guarantee="3 one writer (PostgreSQL)",
        file="pendingops/db/locks.py",
        why="the advisory lock is always taken shared: two syncs of one repository run at once",
        old="""        kind = "_shared" if self._shared else ""
        fn = f"pg_advisory_lock{kind}\"""",
        new="""        kind = "_shared"
        fn = f"pg_advisory_lock{kind}\"""",
        tests=(
            "tests/test_concurrency.py::test_two_syncs_of_one_repository_never_interleave",
            "tests/db/test_locks.py::test_a_repository_lock_is_exclusive_and_the_store_lock_shared",
        ),
        databases="postgresql",
    ),
    # -- 4: every remote is hostile; 5: secrets -------------------------------------------------------
    Mutant(
        id="database-password-shown",
        guarantee="5 secrets never printed",
        file="pendingops/db/database.py",
        why="a malformed database URL is reported with its password",
        old="""    shown, password = mask_password(url), password_of(url)""",
        new="""    shown, password = url, password_of(url)""",
        tests=("tests/db/test_database.py::test_a_bad_url_is_reported_without_its_password",),
    ),
    # -- 6: cost follows the change; bound variables ------------------------------------------------
    Mutant(
        id="lookup-chunks-too-big",
        guarantee="bound-variable chunking",
        file="pendingops/db/lookups.py",
        why="the content lookup's chunks forget the statement's two other bound values",
        old="""        for chunk in db.chunks(digests, 1, other_params=3):  # content type, remote_id, repository_id""",
        new="""        for chunk in db.chunks(digests, 1):  # content type, remote_id, repository_id""",
        tests=("tests/db/test_writes.py::test_writes_and_lookups_respect_the_bound_variable_limit",),
    ),
    # -- failed units, mirror, window and byte budget ------------------------------------------------
    Mutant(
        id="mirror-rewrites-history",
        guarantee="mirror removes exactly the undeclared",
        file="pendingops/db/versions.py",
        why="mirror removal also re-stamps rows removed by an earlier version, changing old versions",
        old="""                _rc.c.version_removed.is_(None),
                _rc.c.version_added < version.number,""",
        new="""                _rc.c.version_added < version.number,""",
        tests=("tests/db/test_versions.py::test_a_mirror_removal_leaves_what_earlier_versions_removed_alone",),
    ),
    Mutant(
        id="stale-remote-artifact",
        guarantee="remote artifacts follow the remote",
        file="pendingops/db/lookups.py",
        why="a RemoteArtifact with the same digest and size counts as current even when its url moved",
        old="""remote_artifact_current = file.this_remote == (artifact.url, artifact.sha256, artifact.size)""",
        new="""remote_artifact_current = (file.this_remote or ("",))[1:] == (artifact.sha256, artifact.size)""",
        tests=("tests/db/test_writes.py::test_remote_artifacts_follow_the_remote",),
    ),
    # -- review fixes: versions, locks, immutability, orphans (issue: correctness and scale) ---------
    Mutant(
        id="version-fence-skipped",
        guarantee="3 one writer: a version another sync discarded is never written",
        file="pendingops/db/versions.py",
        why="membership writes and the finish do not check the version row is still this sync's",
        old="""    if conn.execute(query).scalar() is None:
        raise VersionLost(""",
        new="""    if False:
        raise VersionLost(""",
        tests=(
            "tests/db/test_versions.py::"
            "test_a_sync_whose_version_another_sync_discarded_fails_and_writes_nothing_into_the_new_one",
        ),
        databases="both",
    ),
    Mutant(
        id="lost-lock-not-noticed",
        guarantee="3 a lost lock is noticed before anything is finished",
        file="pendingops/db/locks.py",
        why="the lock's session is never checked before finishing",
        old="""            if self._connection is None and not self._lost:
                return False  # a file or in-process lock cannot be lost while this process lives""",
        new="""            if True:
                return False  # a file or in-process lock cannot be lost while this process lives""",
        tests=(T_CONTEXT + "test_a_lost_repository_lock_is_noticed_before_the_version_is_finished",),
        databases="postgresql",
    ),
    Mutant(
        id="cancelled-lock-wait-kept",
        guarantee="3 a cancelled wait leaves no lock behind",
        file="pendingops/db/locks.py",
        why="a cancelled wait stays queued on the server and takes the lock once it is free, for ever",
        old="""                connection.connection.dbapi_connection.cancel()""",
        new="""                pass""",
        tests=("tests/db/test_locks.py::test_a_cancelled_lock_wait_on_postgresql_is_withdrawn_on_the_server",),
        databases="postgresql",
    ),
    Mutant(
        id="in-memory-sqlite-unlocked",
        guarantee="3 one writer (in-memory SQLite)",
        file="pendingops/db/locks.py",
        why="an in-memory database takes no lock, so two syncs of one repository interleave",
        old="""        if self._local_file() is None:
            lock = _in_process_lock(self._db.engine, self._file_suffix)""",
        new="""        if self._local_file() is None:
            return True
            lock = _in_process_lock(self._db.engine, self._file_suffix)""",
        tests=("tests/db/test_locks.py::test_in_memory_sqlite_runs_syncs_of_one_repository_one_at_a_time",),
    ),
    Mutant(
        id="stored-key-other-bytes",
        guarantee="2 content is immutable",
        file="pendingops/db/lookups.py",
        why="a stored natural key declared with other bytes is linked to the old bytes",
        old="""    if mine and file.sha256 and mine != file.sha256:""",
        new="""    if False:""",
        tests=(
            "tests/operators/test_save.py::"
            "test_a_stored_key_declared_with_other_bytes_fails_and_keeps_the_stored_bytes",
        ),
    ),
    Mutant(
        id="shared-artifact-digests-unchecked",
        guarantee="2 digests on every path",
        file="pendingops/db/lookups.py",
        why="an artifact stored under the declared sha256 is shared although the declared md5 differs",
        old="""        if stored is not None and stored != value:""",
        new="""        if False:""",
        tests=(
            "tests/operators/test_dedup.py::test_a_stored_artifact_is_linked_only_when_every_declared_digest_agrees",
        ),
    ),
    Mutant(
        id="cleanup-off-the-lock-session",
        guarantee="3 never run without the lock (outages: orphans)",
        file="pendingops/db/locks.py",
        why="orphan cleanup runs on pooled connections, which a restart replaces unseen while the lock is gone",
        old="""        if self._connection is None:
            return self._db.transact(fn, *args)""",
        new="""        if True:
            return self._db.transact(fn, *args)""",
        tests=("tests/test_outages.py",),
        databases="postgresql",
    ),
    # -- layers: the floors of docs/architecture.md ----------------------------------------------------
    Mutant(
        id="db-imports-plugin-registry",
        guarantee="layers: db imports nothing above it",
        file="pendingops/db/migrations/branches.py",
        why="the database layer finds the installed plugins itself again (an import inside a function)",
        old='''    """The core's branch: the revision files of ``versions/``, owning the tables of ``db/schema.py``."""
''',
        new='''    """The core's branch: the revision files of ``versions/``, owning the tables of ``db/schema.py``."""
    from pendingops.plugins import available_plugins  # noqa: F401
''',
        tests=("tests/test_architecture.py::test_no_file_imports_a_floor_above_its_own",),
    ),
    Mutant(
        id="schema-check-imports-database",
        guarantee="layers: no import circle",
        file="pendingops/db/migrations/check.py",
        why="the schema check takes DatabaseError from database.py, which calls the check: a circle on one floor",
        old="""from pendingops.db.errors import DatabaseError""",
        new="""from pendingops.db.database import DatabaseError""",
        tests=("tests/test_architecture.py::test_no_import_circle_joins_two_files",),
    ),
    # -- operating: serve's login and --repos, health, metrics; the reserved name ------------------
    Mutant(
        id="reserved-name-accepted",
        guarantee="'-' is no repository name",
        file="pendingops/db/names.py",
        why="a repository named '-' is created; the server's own pages hide it",
        old="""    if name == RESERVED:""",
        new="""    if False:""",
        tests=(
            "tests/db/test_versions.py::test_no_repository_is_made_with_the_reserved_name",
            "tests/cli/test_cli.py::test_the_reserved_repository_name_is_refused_before_anything_is_written",
        ),
    ),
    # -- the seams between features: the shortcut and the storage, outage output, interrupted counts ---
    Mutant(
        id="scrub-misses-remote-artifacts",
        guarantee="5 secrets never printed or stored",
        file="pendingops/db/migrations/versions/core_0010_scrub_credentials.py",
        why="the data migration leaves the passwords older releases stored in remote_artifact URLs",
        old="""    _scrub_column(conn, "remote_artifact", "url")""",
        new="""    pass""",
        tests=("tests/db/test_scrub_migration.py",),
        databases="both",
    ),
    Mutant(
        id="bound-by-id-only",
        guarantee="deleting a repository is final for the queue",
        file="pendingops/db/versions.py",
        why="a queued sync is bound by id alone: on SQLite a new repository may get a deleted one's id",
        old="""    return None if row is None else (row.id, str(row.created_at))""",
        new="""    return None if row is None else (row.id, "")""",
        tests=("tests/test_sync_path.py::test_a_request_bound_to_a_deleted_repository_fails_and_creates_nothing",),
    ),
    Mutant(
        id="outage-retries-chatter",
        guarantee="an outage that outlasts the retry is one line",
        file="pendingops/db/retry.py",
        why="every retry of a lost connection writes a warning: a long outage is many lines before the one",
        old="""            logger.debug("%s during %s; trying again in %.1f s", reason, what, wait)""",
        new="""            logger.warning("%s during %s; trying again in %.1f s", reason, what, wait)""",
        tests=("tests/test_outage_output.py::test_an_outage_longer_than_the_retry_is_one_line",),
        databases="postgresql",
    ),
    # -- serve: the conditions and ranges aiohttp's FileResponse lacks --------------------------------
    Mutant(
        id="fill-overwrites-stored-values",
        guarantee="2 content is immutable (fill, never overwrite)",
        file="pendingops/db/fill.py",
        why="a resync overwrites a stored field with whatever the remote declares now",
        old="""                sets[name] = func.coalesce(column, case(values, value=table.c.id))
                wanted.append(and_(column.is_(None), table.c.id.in_(sorted(declaring))))  # type: ignore[type-var]""",
        new="""                sets[name] = case(values, value=table.c.id, else_=column)
                wanted.append(table.c.id.in_(sorted(declaring)))  # type: ignore[type-var]""",
        also=(
            (
                """.where(table.c.id.in_(chunk), any_null)""",
                """.where(table.c.id.in_(chunk))""",
            ),
            (
                """                    if stored is None and unit.fields.get(c.name) is not None""",
                """                    if unit.fields.get(c.name) is not None""",
            ),
        ),
        tests=(T_RELEASE2 + "test_release_2_fills_its_new_column_for_stored_content_and_never_overwrites",),
        databases="both",
    ),
    Mutant(
        id="drift-not-refused-on-open",
        guarantee="8 drift is an error before it is a SQL error",
        file="pendingops/db/migrations/check.py",
        why="a model column no revision created passes the check; the first statement naming it fails",
        old="""    drifts = missing_columns(conn, tables, branches)
    if drifts:""",
        new="""    drifts = missing_columns(conn, tables, branches)
    if drifts and False:""",
        tests=(T_RELEASE2 + "test_a_model_column_without_a_revision_is_drift_refused_in_one_line",),
        databases="both",
    ),
    Mutant(
        id="unknown-revision-internal-error",
        guarantee="bad input is one line and exit 2",
        file="pendingops/db/migrations/runner.py",
        why="db downgrade to a revision no branch has prints an internal error, exit 1",
        old="""    except (CommandError, RevisionError) as exc:""",
        new="""    except (KeyError,) as exc:""",
        tests=(T_RELEASE2 + "test_downgrade_to_an_unknown_revision_or_branch_is_one_line_exit_2",),
    ),
    Mutant(
        id="fill-per-unit-statement",
        guarantee="6 cost follows the change (fill in batch statements)",
        file="pendingops/db/fill.py",
        why="filling a new column sends one UPDATE per stored unit",
        old="""        for chunk in db.chunks(group, 1 + 3 * len(names)):""",
        new="""        for chunk in ([unit] for unit in group):""",
        tests=("tests/db/test_fill.py",),
        databases="both",
    ),
    Mutant(
        id="rollback-origin-forgotten",
        guarantee="versions says a version came from a rollback",
        file="pendingops/db/lifecycle.py",
        why="a rollback's version is listed like any sync's",
        old="""content_count=count, rolled_back_to=target)""",
        new="""content_count=count, rolled_back_to=None)""",
        tests=("tests/cli/test_lifecycle.py::test_diff_rollback_and_version_removal",),
    ),
    # -- seams of the merge: a plugin step reads a file written in a batch -------------------------
    Mutant(
        id="registration-recreates-deleted-repository",
        guarantee="deleting a repository is final for the queue",
        file="pendingops/db/versions.py",
        why="a queued sync registers its repository by name only: one deleted after run_sync's check is created again",
        old="""    if identity is not None:
        return require_repository(conn, name, identity)""",
        new="""    pass""",
        tests=(
            "tests/test_sync_path.py::"
            "test_a_repository_deleted_between_the_check_and_the_registration_is_not_created_again",
        ),
        databases="both",
    ),
    Mutant(
        id="sqlite-checkpoints-every-batch",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/database.py",
        why="SQLite's default checkpoint every 1000 WAL pages: beside a large store nearly every batch's commit "
        "copies its scattered pages back and syncs the file (a sync beside 150,000 units ~1.5x the empty store's)",
        old="""SQLITE_WAL_AUTOCHECKPOINT = 10_000""",
        new="""SQLITE_WAL_AUTOCHECKPOINT = 1000""",
        tests=(
            "tests/db/test_statistics.py::test_sqlite_batches_beside_a_store_leave_their_pages_to_one_later_checkpoint",
        ),
        databases="sqlite",
    ),
    Mutant(
        id="sqlite-wal-kept-at-its-peak",
        guarantee="cost follows the change: rarer SQLite checkpoints without a WAL file kept at its peak",
        file="pendingops/db/database.py",
        why="a WAL grown between the rarer checkpoints keeps its size on disk after they copied it back",
        old="""            cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")""",
        new="""            pass""",
        tests=("tests/db/test_statistics.py::test_a_checkpointed_sqlite_wal_is_cut_back_to_its_size_limit",),
        databases="sqlite",
    ),
    Mutant(
        id="stats-share-ignored",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/statistics.py",
        why="only a change larger than the whole table counts: statistics stay stale after a change of a third",
        old="""    return changed >= STALE_ROWS or changed > STALE_SHARE * max(known, 0)""",
        new="""    return changed >= STALE_ROWS or changed > max(known, 0)""",
        tests=("tests/db/test_statistics.py::test_a_small_change_beside_fresh_statistics_analyses_nothing_a_large_one_does",),
        databases="both",
    ),
    Mutant(
        id="rollback-update-one-statement",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/lifecycle.py",
        why="the rows of what came after are ended in one statement around the diff: a planner whose statistics"
        " predate the repository probes all its current rows once per unit (quadratic)",
        old="""_rc.c.content_id.in_(chunk), current)""",
        new="""_rc.c.content_id.in_(_only_in(repository_id, latest, target).scalar_subquery()), current)""",
        tests=(
            "tests/db/test_skewed_plans.py::test_a_rollback_ends_the_rows_of_what_came_after_through_the_content_index",
        ),
        databases="both",
    ),
    Mutant(
        id="join-adjacent-by-repository",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/lifecycle.py",
        why="the later row of a unit is looked for through a repository index: skewed statistics walk the"
        " whole repository for every row ending at the removed version",
        old="""                starting.c.repository_id + 0 == ending.c.repository_id,""",
        new="""                starting.c.repository_id == ending.c.repository_id,""",
        tests=(
            "tests/db/test_skewed_plans.py::test_removing_versions_joins_adjacent_rows_through_the_content_index",
            "tests/db/test_skewed_plans.py::test_with_statistics_that_predate_a_repository_the_join_of_adjacent_rows_stays_a_probe",
        ),
        databases="both",
    ),
    Mutant(
        id="sqlite-no-optimize-on-close",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/database.py",
        why="a SQLite connection closes without PRAGMA optimize: tables it queried keep no statistics",
        old="""            dbapi_conn.execute("PRAGMA optimize")""",
        new="""            pass""",
        tests=("tests/db/test_statistics.py::test_a_sqlite_connection_that_closes_runs_pragma_optimize",),
        databases="sqlite",
    ),
    Mutant(
        id="sqlite-pool-keeps-old-statistics",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/statistics.py",
        why="SQLite connections the pool kept from before a refresh never load its statistics",
        old="""        db.engine.dispose()""",
        new="""        pass""",
        tests=(
            "tests/db/test_statistics.py::test_after_a_refresh_sqlite_connections_of_the_pool_plan_with_the_new_statistics",
        ),
        databases="sqlite",
    ),
    Mutant(
        id="lookup-membership-by-repository",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/lookups.py",
        why="the membership probe may use a (repository, ...) index: statistics that predate the repository"
        " call it empty and every unit's probe walks all its rows",
        old="""            _rc.c.repository_id + 0 == repository_id,""",
        new="""            _rc.c.repository_id == repository_id,""",
        tests=(
            "tests/db/test_statistics.py::test_after_the_first_sync_a_lookup_beside_the_store_probes_by_key_and_membership_by_content",
        ),
        databases="both",
    ),
    # -- the resync's unchanged units, compared and declared in SQL -----------------------------------
    Mutant(
        id="unchanged-ignores-digest",
        guarantee="2 digests on every path",
        file="pendingops/db/unchanged.py",
        why="a unit whose remote now declares another sha256 is taken as unchanged: its source row stays stale",
        old="""        _ra.c.sha256 == temp.c.a_sha256,""",
        new="""        True,""",
        tests=(T_UNCHANGED + "test_a_changed_url_size_or_digest_goes_through_the_pipeline",),
        databases="both",
    ),
    Mutant(
        id="unchanged-extra-content-artifact",
        guarantee="2 content is immutable",
        file="pendingops/db/unchanged.py",
        why="content holding a file more than the unit declares is taken as unchanged: the dropped file goes unnoticed",
        old="""    conditions = [files == temp.c.n]""",
        new="""    conditions = [files >= temp.c.n]""",
        tests=(T_UNCHANGED + "test_one_difference_in_one_of_two_artifacts_takes_the_unit_through",),
        databases="both",
    ),
    Mutant(
        id="unchanged-one-artifact-matched-is-enough",
        guarantee="unchanged units only skip the pipeline",
        file="pendingops/db/unchanged.py",
        why="a unit of two artifacts is taken as unchanged when one matches: the other's new url or bytes go unseen",
        old="""        per_artifact.c.matched == per_artifact.c.n""",
        new="""        per_artifact.c.matched >= 1""",
        tests=(T_UNCHANGED + "test_one_difference_in_one_of_two_artifacts_takes_the_unit_through",),
        databases="both",
    ),
    Mutant(
        id="unchanged-other-file-unchecked",
        guarantee="2 content is immutable",
        file="pendingops/db/unchanged.py",
        why="one-artifact units are unchanged though their content holds a second file: the dropped one goes unseen",
        old="""        conditions = [~exists().where(any_ca.c.content_id == typed.c.id, any_ca.c.id != _ca.c.id)]""",
        new="""        conditions = []""",
        tests=(T_UNCHANGED + "test_units_that_all_declare_one_of_the_two_files_held_go_through",),
        databases="both",
    ),
    Mutant(
        id="unchanged-several-compared-as-one",
        guarantee="unchanged units only skip the pipeline",
        file="pendingops/db/unchanged.py",
        why="a batch with units of two artifacts is compared as if each had one: one matching row settles a unit",
        old="""    several = any(row[1] > 1 for row in rows)""",
        new="""    several = False""",
        tests=(T_UNCHANGED + "test_one_difference_in_one_of_two_artifacts_takes_the_unit_through",),
        databases="both",
    ),
    Mutant(
        id="unchanged-ignores-url",
        guarantee="unchanged units only skip the pipeline",
        file="pendingops/db/unchanged.py",
        why="a unit served from a new url is taken as unchanged: the on-demand source keeps the old url",
        old="""        _ra.c.url == temp.c.a_url,""",
        new="""        True,""",
        tests=(T_UNCHANGED + "test_a_changed_url_size_or_digest_goes_through_the_pipeline",),
        databases="both",
    ),
    Mutant(
        id="unchanged-ignores-stored-bytes",
        guarantee="2 digests on every path",
        file="pendingops/db/unchanged.py",
        why="a stored artifact whose size contradicts the remote is taken as unchanged instead of reported",
        old="""        or_(temp.c.a_size.is_(None), _artifact.c.size == temp.c.a_size),""",
        new="""        True,""",
        tests=(T_UNCHANGED + "test_a_stored_artifact_of_other_bytes_is_not_unchanged",),
        databases="both",
    ),
    Mutant(
        id="unchanged-any-past-membership",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="content the repository held once (removed since) is taken as a member: it is never added back",
        old="""_rc.c.version_removed.is_(None)""",
        new="""True""",
        tests=(
            T_UNCHANGED + "test_a_unit_removed_earlier_or_held_by_another_repository_is_added_again",
            T_UNCHANGED + "test_the_version_is_what_was_declared_whatever_the_shortcut_took",
        ),
        databases="both",
    ),
    Mutant(
        id="unchanged-any-repository",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="content another repository holds is taken as this one's: a second repository never gets it",
        old="""_rc.c.repository_id == repository_id, """,
        new="""""",
        tests=(T_UNCHANGED + "test_a_unit_removed_earlier_or_held_by_another_repository_is_added_again",),
        databases="both",
    ),
    Mutant(
        id="unchanged-declared-in-another-version",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="the INSERT ... SELECT declares the unchanged units for another version than the one being built",
        old="""    declared = select(literal(version.id), matches.c.content_id)""",
        new="""    declared = select(literal(version.id - 1), matches.c.content_id)""",
        tests=(T_UNCHANGED + "test_unchanged_units_are_declared_and_not_fetched_again",),
        databases="postgresql",
    ),
    Mutant(
        id="unchanged-cte-declares-nothing",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="PostgreSQL's one statement finds the unchanged units but leaves out the CTE declaring them",
        old="""            _declare(db, declare_in, matches).cte("declared")""",
        new="""            matches""",
        tests=(T_UNCHANGED + "test_unchanged_units_are_declared_and_not_fetched_again",),
        databases="postgresql",
    ),
    Mutant(
        id="unchanged-temp-rows-kept-sqlite",
        guarantee="unchanged units only skip the pipeline",
        file="pendingops/db/unchanged.py",
        why="a batch's rows stay in SQLite's comparison table: the next resync's units match rows of units before",
        old="""        conn.execute(temp.delete())""",
        new="""        pass""",
        tests=(
            T_UNCHANGED + "test_a_batch_leaves_no_row_behind_for_the_next_comparison",
            "tests/db/test_unchanged.py::test_the_comparison_table_is_empty_after_each_transaction_on_its_connection",
        ),
    ),
    Mutant(
        id="unchanged-temp-rows-kept-postgresql",
        guarantee="unchanged units only skip the pipeline",
        file="pendingops/db/unchanged.py",
        why="a batch's rows outlive its transaction on PostgreSQL: the next resync's units match rows of units before",
        old="""        postgresql_on_commit="DELETE ROWS",""",
        new="""        postgresql_on_commit="PRESERVE ROWS",""",
        tests=("tests/db/test_unchanged.py::test_the_comparison_table_is_empty_after_each_transaction_on_its_connection",),
        databases="postgresql",
    ),
    Mutant(
        id="unchanged-sqlite-declares-nothing",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/unchanged.py",
        why="SQLite finds the unchanged units but does not declare them: a mirror resync removes what it kept",
        old="""            declare_content(conn, db, declare_in, [content_id for _, content_id, _ in found""",
        new="""            declare_content(conn, db, declare_in, [content_id for _, content_id, _ in []""",
        tests=(T_UNCHANGED + "test_unchanged_units_are_declared_and_not_fetched_again",),
    ),
    Mutant(
        id="declaration-conflict-fails",
        guarantee="mirror removes, additive keeps",
        file="pendingops/db/database.py",
        why="a unit declared twice in one version (two batches, or the comparison then the whole path) fails the sync",
        old="""+ " ON CONFLICT DO NOTHING", flat)""",
        new=""", flat)""",
        tests=(T_UNCHANGED + "test_a_unit_whose_stored_file_was_deleted_is_fetched_again",),
        databases="both",
    ),
    Mutant(
        id="unchanged-temp-not-analysed",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/unchanged.py",
        why="the loaded batch has no statistics: SQLite scans a whole store table per batch and probes the batch",
        old="""    conn.exec_driver_sql(f"ANALYZE {temp.name}")""",
        new="""    pass""",
        tests=(T_UNCHANGED + "test_the_comparison_walks_the_batch_and_probes_the_store_by_index",),
    ),
    Mutant(
        id="unchanged-joined-not-probed",
        guarantee="6 cost follows the change (statistics)",
        file="pendingops/db/unchanged.py",
        why="PostgreSQL joins the batch to the store as it plans: a hash or merge join reads whole tables per batch",
        old="""    if dialect == "postgresql":
        probe""",
        new="""    if False:
        probe""",
        tests=(T_UNCHANGED + "test_the_comparison_walks_the_batch_and_probes_the_store_by_index",),
        databases="postgresql",
    ),
    Mutant(
        id="unchanged-skips-null-fields",
        guarantee="fill, never overwrite",
        file="pendingops/db/unchanged.py",
        why="stored content with a NULL field the unit declares is taken as unchanged: save never fills it",
        old="""        conditions.append(or_(typed.c[name].is_not(None), temp.c[f"d_{name}"] == 0))""",
        new="""        pass""",
        tests=(
            T_UNCHANGED + "test_a_stored_null_field_the_unit_declares_is_filled_not_skipped",
            "tests/plugins/test_python_resync.py::test_a_stored_null_field_the_index_now_gives_is_filled_on_resync",
        ),
    ),
)
