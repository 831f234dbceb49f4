"""``sync --option KEY=VALUE``: options handed to the plugin, checked against the ones it knows."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a plugin option, repeatable (python: projects=a,b prereleases=false latest=N); remembered for the"
        " repository: a later sync without --option runs with the same ones",
    )


def plugin_options(pairs: Sequence[str], plugin: object) -> dict[str, str] | None:
    """The options ``pairs`` give, checked against the plugin's (before the sync starts); None when
    none were given, so the sync runs with the ones remembered for the repository."""
    from pendingops.plugins.options import UnknownOption, check_options

    if not pairs:
        return None
    options: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UnknownOption(f"--option {pair!r}: write KEY=VALUE")
        options[key] = value
    return check_options(options, plugin)
