"""Migration branches: the core's and each plugin's, read from their revision files.

Reading the files with ``ast`` (rather than loading them through Alembic) keeps the version check
every command makes on opening a database cheap; a test checks it agrees with Alembic's own view.
Which plugins are installed is not known here: the layer that knows them reads their branches
(``read_branch``) and hands them to the database.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

#: the table holding each branch's current revision (one row per branch)
VERSION_TABLE = "pendingops_schema_version"
CORE = "core"
CORE_VERSIONS = Path(__file__).with_name("versions")
#: a table whose presence in an unversioned database says the core schema is there
CORE_MARKER = "content"


@dataclass(frozen=True, slots=True)
class Revision:
    id: str
    down: tuple[str, ...]
    description: str
    #: revisions of other branches this one needs (Alembic's ``depends_on``)
    depends: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Branch:
    """One line of revisions: the core's, or a plugin's."""

    name: str
    location: Path
    #: a table whose presence in a database without a version row means "created before migrations"
    marker_table: str
    revisions: dict[str, Revision] = field(default_factory=dict)
    #: the tables its models define (a drift report names the branch owning a table); empty: unknown
    tables: frozenset[str] = frozenset()

    @property
    def base(self) -> str:
        """The branch's first revision (the schema as it was before it had migrations)."""
        ids = set(self.revisions)
        bases = [r.id for r in self.revisions.values() if not ids.intersection(r.down)]
        if len(bases) != 1:
            raise ValueError(f"migration branch {self.name!r} must have exactly one first revision, has {bases}")
        return bases[0]

    @property
    def heads(self) -> tuple[str, ...]:
        below = {d for r in self.revisions.values() for d in r.down}
        return tuple(sorted(r for r in self.revisions if r not in below))

    @property
    def head(self) -> str:
        heads = self.heads
        if len(heads) != 1:
            raise ValueError(f"migration branch {self.name!r} must have one head, has {list(heads)}: merge them")
        return heads[0]

    def ancestors(self, revision: str) -> set[str]:
        """``revision`` and every revision of this branch below it."""
        seen: set[str] = set()
        todo = [revision]
        while todo:
            rev = todo.pop()
            if rev in seen or rev not in self.revisions:
                continue
            seen.add(rev)
            todo.extend(self.revisions[rev].down)
        return seen

    def pending(self, current: str | None) -> list[Revision]:
        """Revisions an upgrade from ``current`` (None: nothing applied) would apply, oldest first."""
        done = self.ancestors(current) if current else set()
        todo = [r for r in self.revisions.values() if r.id not in done]
        order: list[Revision] = []
        placed = set(done)
        while todo:  # parents before children
            ready = [r for r in todo if all(d in placed or d not in self.revisions for d in r.down)]
            if not ready:
                raise ValueError(f"migration branch {self.name!r} has a cycle")
            for r in sorted(ready, key=lambda r: r.id):
                order.append(r)
                placed.add(r.id)
            todo = [r for r in todo if r.id not in placed]
        return order


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def read_revision(path: Path) -> Revision | None:
    """The revision a file declares (``revision``, ``down_revision``), or None if it declares none."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = _literal(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            values[node.target.id] = _literal(node.value)
    if not isinstance(values.get("revision"), str):
        return None
    doc = (ast.get_docstring(tree) or "").strip().splitlines()
    return Revision(
        values["revision"], _ids(values.get("down_revision")), doc[0] if doc else "", _ids(values.get("depends_on"))
    )


def _ids(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


@cache
def read_branch(name: str, location: Path, marker_table: str) -> Branch:
    """The branch whose revision files are the ``*.py`` files of ``location``."""
    revisions: dict[str, Revision] = {}
    for path in sorted(location.glob("*.py")):
        if path.name.startswith("__"):
            continue
        revision = read_revision(path)
        if revision is not None:
            revisions[revision.id] = revision
    return Branch(name, location, marker_table, revisions)


def migrations_folder(spec: str | Path) -> Path:
    """A plugin's ``migrations``: a folder, or the dotted name of a package holding the revision files."""
    if isinstance(spec, Path):
        return spec
    found = importlib.util.find_spec(spec)
    if found is None or not found.submodule_search_locations:
        raise ValueError(f"migrations package {spec!r} not found")
    return Path(next(iter(found.submodule_search_locations)))


def tables_of_module(module: str) -> frozenset[str]:
    """The tables of the models defined in ``module`` (a plugin's content module, the core's schema)."""
    from pendingops.db.schema import Base

    return frozenset(
        str(m.local_table.name)
        for m in Base.registry.mappers
        if m.class_.__module__ == module and "__tablename__" in m.class_.__dict__
    )


def core_branch() -> Branch:
    """The core's branch: the revision files of ``versions/``, owning the tables of ``db/schema.py``."""
    branch = read_branch(CORE, CORE_VERSIONS, CORE_MARKER)
    return replace(branch, tables=tables_of_module("pendingops.db.schema"))
