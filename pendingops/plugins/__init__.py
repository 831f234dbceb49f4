"""Content-type plugins and how they are found.

What a plugin is, and the types it works with (``Source``, ``index_read``, ``PublishedFile``,
``PublishedPage``...), are in ``pendingops.plugins.protocol`` and importable from here. Third-party
packages register plugins under the ``pendingops.plugins`` entry-point group; the file plugin is
built in. ``pendingops.plugins.database`` hands the installed plugins' migration branches to the
database layer.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

from pendingops.pending import describe_error
from pendingops.plugins.protocol import (
    PageResponse,
    Plugin,
    PublishedFile,
    PublishedPage,
    Source,
    VersionRef,
    index_read,
    published_files,
    published_pages,
)

ENTRY_POINT_GROUP = "pendingops.plugins"

__all__ = [
    "ENTRY_POINT_GROUP",
    "PageResponse",
    "Plugin",
    "PluginNotFound",
    "PublishedFile",
    "PublishedPage",
    "Source",
    "VersionRef",
    "available_plugins",
    "get_plugin",
    "index_read",
    "load_plugins",
    "published_files",
    "published_pages",
]


class PluginNotFound(LookupError):
    pass


def available_plugins() -> dict[str, Plugin]:
    """Every installed plugin by name: the built-in ones and those registered as entry points."""
    found, broken = load_plugins()
    for name, reason in broken.items():
        warnings.warn(f"plugin {name!r} cannot be loaded: {reason}", stacklevel=2)
    return found


def load_plugins() -> tuple[dict[str, Plugin], dict[str, str]]:
    """The installed plugins by name, and why each registered plugin that failed to load did."""
    from pendingops.plugins.file import FilePlugin

    found: dict[str, Plugin] = {"file": FilePlugin()}
    broken: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            continue
        try:
            loaded = entry.load()
            found[entry.name] = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # one broken third-party plugin must not break every command
            broken[entry.name] = f"{entry.value}: {describe_error(exc)}"
    return found, broken


def get_plugin(name: str) -> Plugin:
    plugins = available_plugins()
    if name not in plugins:
        raise PluginNotFound(f"no plugin named {name!r} (installed: {', '.join(sorted(plugins))})")
    return plugins[name]
