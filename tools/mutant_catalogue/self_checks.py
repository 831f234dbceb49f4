"""The two self checks of ``--baseline``: they prove the tests import the scratch copy."""

from __future__ import annotations

from ._mutant import Mutant
from ._test_paths import T_DECL

#: Obvious mutants that are not in the list: killed only if the tests import the scratch copy, in
#: process and through the ``pendingops`` console script the CLI tests start.
SELF_CHECKS: tuple[Mutant, ...] = (
    Mutant(
        id="self-check-in-process",
        guarantee="the copy is imported",
        file="pendingops/db/versions.py",
        why="every version number is off by one",
        old="""    number = base.number + 1""",
        new="""    number = base.number + 2""",
        tests=(T_DECL + "test_initial_sync_then_mirror_resync",),
    ),
    Mutant(
        id="self-check-console-script",
        guarantee="the copy is imported",
        file="pendingops/plugins/__init__.py",
        why="the console script lists no plugin",
        old="""    broken: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):""",
        new="""    broken: dict[str, str] = {}
    return {}, broken
    for entry in entry_points(group=ENTRY_POINT_GROUP):""",
        tests=("tests/cli/test_cli.py::test_plugins_lists_the_file_plugin",),
    ),
)
