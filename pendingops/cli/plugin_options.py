"""``sync --option KEY=VALUE``: options handed to the plugin, checked against the ones it knows."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


class UnknownOption(ValueError):
    """An option the plugin does not know, or one not written KEY=VALUE."""


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a plugin option, repeatable (python: projects=a,b prereleases=false latest=N)",
    )


def plugin_options(pairs: Sequence[str], plugin: object) -> dict[str, str]:
    """The options ``pairs`` give, each one the plugin declares in its ``options`` mapping, checked by
    its ``check_options(options)`` when it has one (before the sync starts)."""
    known = dict(getattr(plugin, "options", None) or {})
    name = getattr(plugin, "name", "?")
    options: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UnknownOption(f"--option {pair!r}: write KEY=VALUE")
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise UnknownOption(f"the {name} plugin has no option {key!r} (known: {listed})")
        options[key] = value
    check = getattr(plugin, "check_options", None)
    if callable(check):
        check(options)
    return options
