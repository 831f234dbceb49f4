"""The import layers of docs/architecture.md hold: no file imports a floor above its own, and no
import circle joins two files.

Imports are read with ``ast`` from every file of the package: at the top of a module, inside a
function and under ``TYPE_CHECKING`` alike (each one is knowledge of the module it names). Imports
made by ``importlib`` from strings are not followed. The floors are read from the table of
docs/architecture.md, so the document and the check cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pendingops"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Imports that close a circle today, each (importer, imported). The split of the sync context, of the
#: command line's sync and of the workers cuts them; empty this as they go (a cut one fails the test).
CIRCLES_TO_CUT = frozenset(
    {
        # cli/sync.py takes Settings and EXIT_OK from _app.py, which takes print_failures from it
        ("pendingops/cli/sync.py", "pendingops/cli/_app.py"),
        # the queue registers the schedule's tick; the schedule enqueues syncs
        ("pendingops/workers/queue.py", "pendingops/workers/schedule.py"),
    }
)

Graph = dict[str, set[str]]


def read_floors(document: Path) -> list[tuple[str, ...]]:
    """The floors of the table under "## Floors", lowest first: each the paths of its second column."""
    floors: dict[int, tuple[str, ...]] = {}
    section = document.read_text(encoding="utf-8").split("\n## Floors\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        row = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if row:
            floors[int(row[1])] = tuple(re.findall(r"`([^`]+)`", row[2]))
    assert sorted(floors) == list(range(1, len(floors) + 1)), f"floors must be numbered 1..n: {sorted(floors)}"
    return [floors[number] for number in sorted(floors)]


def module_files(root: Path, package: str) -> dict[str, str]:
    """Every module of ``package`` under ``root`` by dotted name, to its path relative to ``root``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        relative = path.relative_to(root)
        parts = relative.with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = relative.as_posix()
    return found


def import_graph(root: Path, package: str) -> Graph:
    """File -> the files of ``package`` it imports (a ``from X import Y`` names module X.Y if it is one)."""
    modules = module_files(root, package)
    graph: Graph = {}
    for name, path in modules.items():
        is_package = path.endswith("/__init__.py")
        imported: set[str] = set()
        for node in ast.walk(ast.parse((root / path).read_text(encoding="utf-8"), path)):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                for alias in node.names:
                    imported.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[path] = {modules[target] for target in imported if target in modules} - {path}
    return graph


def floor_of(path: str, floors: list[tuple[str, ...]]) -> int | None:
    """The floor (1 = lowest) whose longest entry covers ``path``: a file itself, or a folder holding it."""
    covering = [
        (len(entry), number)
        for number, entries in enumerate(floors, start=1)
        for entry in entries
        if path == entry or (entry.endswith("/") and path.startswith(entry))
    ]
    return max(covering)[1] if covering else None


def upward_imports(graph: Graph, floors: list[tuple[str, ...]], allowed: frozenset[tuple[str, str]]) -> list[str]:
    """Each import of a file on a higher floor than the importer's, as "importer (floor) -> imported (floor)"."""
    found = []
    for importer, targets in sorted(graph.items()):
        for target in sorted(targets):
            low, high = floor_of(importer, floors), floor_of(target, floors)
            if low is not None and high is not None and high > low and (importer, target) not in allowed:
                found.append(f"{importer} ({low}) -> {target} ({high})")
    return found


def circles(graph: Graph, allowed: frozenset[tuple[str, str]]) -> list[list[str]]:
    """The groups of two or more files that import each other in a loop (Tarjan's strongly connected components)."""
    edges = {node: sorted(t for t in targets if (node, t) not in allowed) for node, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges.get(target, ()))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(ROOT, PACKAGE)


@pytest.fixture(scope="module")
def floors() -> list[tuple[str, ...]]:
    return read_floors(ARCHITECTURE)


def test_every_file_of_the_package_stands_on_a_floor(graph: Graph, floors: list[tuple[str, ...]]) -> None:
    assert len(floors) >= 5
    assert [path for path in graph if floor_of(path, floors) is None] == []


def test_no_file_imports_a_floor_above_its_own(graph: Graph, floors: list[tuple[str, ...]]) -> None:
    assert upward_imports(graph, floors, CIRCLES_TO_CUT) == []


def test_no_import_circle_joins_two_files(graph: Graph) -> None:
    assert circles(graph, CIRCLES_TO_CUT) == []


def test_each_import_still_to_cut_is_still_there(graph: Graph) -> None:
    """An import cut since is taken off the list, so the list only ever shrinks."""
    assert [pair for pair in sorted(CIRCLES_TO_CUT) if pair[1] not in graph.get(pair[0], set())] == []


def test_the_database_layer_imports_only_its_floor_and_the_ground(graph: Graph, floors: list[tuple[str, ...]]) -> None:
    database_floor = floor_of("pendingops/db/database.py", floors)
    assert database_floor == floor_of("pendingops/db/migrations/check.py", floors)
    assert database_floor is not None and database_floor <= 2
    for path, targets in graph.items():
        if path.startswith("pendingops/db/"):
            assert {t for t in targets if (floor_of(t, floors) or 0) > database_floor} == set(), path


def test_the_check_finds_an_upward_import_and_a_circle_wherever_they_are_written(tmp_path: Path) -> None:
    """On a small package of its own: imports inside functions and under TYPE_CHECKING count too."""
    files = {
        "pkg/__init__.py": "",
        "pkg/low.py": "def f():\n    from pkg.high import g\n",
        "pkg/high.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import other\n",
        "pkg/other.py": "from . import high\nimport json\n",
        "pkg/sub/__init__.py": "from ..low import f\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    floors = [("pkg/low.py", "pkg/sub/"), ("pkg/",)]
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg/__init__.py": set(),
        "pkg/low.py": {"pkg/high.py"},
        "pkg/high.py": {"pkg/other.py"},
        "pkg/other.py": {"pkg/high.py"},
        "pkg/sub/__init__.py": {"pkg/low.py"},
    }
    assert upward_imports(graph, floors, frozenset()) == ["pkg/low.py (1) -> pkg/high.py (2)"]
    assert upward_imports(graph, floors, frozenset({("pkg/low.py", "pkg/high.py")})) == []
    assert circles(graph, frozenset()) == [["pkg/high.py", "pkg/other.py"]]
    assert circles(graph, frozenset({("pkg/other.py", "pkg/high.py")})) == []
