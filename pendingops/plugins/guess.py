"""Which plugin a remote's index looks like, for a sync whose plugin cannot read what the remote sent.

A newcomer syncs a Python simple index, a Debian archive or a Helm chart repository without
``--plugin``: the file plugin finds no PULP_MANIFEST. The first bytes of what came (and the URL) are
shown to every installed plugin that offers ``looks_like(head, url)``; the error then names the
``--plugin`` to try, or says no installed plugin recognises it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pendingops.pending import PendingInputError

#: formats no built-in plugin reads, recognised only to say so: (what it is, a test on the first bytes)
_FOREIGN = (("a Helm chart repository's index.yaml", lambda head: b"apiversion:" in head and b"entries:" in head),)


class OtherPluginsIndex(PendingInputError):
    """The remote's index is not the chosen plugin's; the message names the ``--plugin`` to try."""


def plugins_to_try(head: bytes, url: str, plugins: Mapping[str, object], used: str) -> list[str]:
    """The names of the installed plugins (other than ``used``) whose ``looks_like(head, url)`` is true."""
    found = []
    for name, plugin in sorted(plugins.items()):
        looks_like = getattr(plugin, "looks_like", None)
        if name != used and callable(looks_like) and looks_like(head, url):
            found.append(name)
    return found


def other_plugin_hint(error: BaseException, url: str, plugins: Mapping[str, object], used: str) -> str | None:
    """What to add to ``error`` (a plugin could not read the remote's index): the ``--plugin`` to try.

    None when the error carries no ``document_head`` (the plugin read something it expected).
    """
    head = getattr(error, "document_head", None)
    if not isinstance(head, bytes):
        return None
    names = plugins_to_try(head, url, plugins, used)
    if names:
        return "it looks like another plugin's index: try " + " or ".join(f"--plugin {n}" for n in names)
    lowered = head.lower()
    for what, test in _FOREIGN:
        if test(lowered):
            return f"it looks like {what}, which no installed plugin reads ('pendingops plugins' lists them)"
    if b"<html" in lowered or b"<!doctype html" in lowered:
        others = ", ".join(sorted(n for n in plugins if n != used))
        return f"if it is another kind of repository, name its plugin with --plugin (installed: {others})"
    return None


def with_plugin_hint(error: Exception, url: str, plugins: Mapping[str, object], used: str) -> Exception:
    """``error``, or an ``OtherPluginsIndex`` saying the same and naming the ``--plugin`` to try."""
    hint = other_plugin_hint(error, url, plugins, used)
    return error if hint is None else OtherPluginsIndex(f"{error}; {hint}")
