"""The cookbook plugin: Chef cookbooks from a Supermarket-style remote.

The remote's ``{base}/universe`` lists every cookbook version, ``{name: {version: {"download_url",
"dependencies", "location_type", "location_path"}}}``, with no digests; ``{base}/api/v1/cookbooks/
{name}/versions/{version}`` adds per-version metadata (license, tarball size, publication date).

A cookbook version is unique by (name, version, content_id), content_id being the sha256 of its
tarball: a tarball that changes is a new unit, and versions that held the old one keep it. That
digest is known only once the tarball is downloaded, or once this remote served the same url
before, so the plugin's pipeline is the stock one reordered, with two steps of its own::

    query_known_digests -> query_existing_artifacts -> download -> complete_key
      -> query_existing_content -> fetch_metadata -> read_tarball -> save -> keep_base_on_failure

Content lookup runs once the key is complete, before the metadata requests: a version already
saved needs no metadata request, and a unit that fails later still knows whether the base version
had it. A version that fails before its key is complete (its tarball could not be fetched) is
matched to the base version by name and version instead, so a mirror sync does not remove it.

Everything the remote sends is read with limits: the universe is streamed, one bounded entry at a
time, checked in full into an SQLite file (which also finds versions listed twice) before the first
unit is emitted from that file, so memory does not grow with it; a tarball must be gzip, is read
as a stream with a cap on members and bytes, and keeps no member in memory; text going into the
database must be valid (no lone surrogate, no NUL).

Each version is published as such a remote (``pendingops serve``, ``export``): its ``universe`` and,
below ``api/``, every cookbook version's metadata document (``pages.py``), links relative in an export.
"""

from pendingops.plugins.cookbook.content import (
    CookbookContent,
    base_url,
    metadata_url,
    tarball_path,
    universe_url,
)
from pendingops.plugins.cookbook.plugin import (
    CookbookPlugin,
    complete_key,
    cookbook_unit,
    fetch_version_metadata,
    keep_base_on_failure,
    read_tarball,
    universe_document,
)
from pendingops.plugins.cookbook.tarball import (
    MAX_METADATA_BYTES,
    MAX_TARBALL_BYTES,
    MAX_TARBALL_MEMBERS,
    read_metadata_json,
)
from pendingops.plugins.cookbook.universe import (
    MAX_ENTRY_BYTES,
    MAX_UNIVERSE_BYTES,
    UniverseEntry,
    UniverseError,
    index_universe,
    indexed_entries,
    iter_universe,
    parse_universe,
)

__all__ = [
    "MAX_ENTRY_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_TARBALL_BYTES",
    "MAX_TARBALL_MEMBERS",
    "MAX_UNIVERSE_BYTES",
    "CookbookContent",
    "CookbookPlugin",
    "UniverseEntry",
    "UniverseError",
    "base_url",
    "complete_key",
    "cookbook_unit",
    "fetch_version_metadata",
    "index_universe",
    "indexed_entries",
    "iter_universe",
    "keep_base_on_failure",
    "metadata_url",
    "parse_universe",
    "read_metadata_json",
    "read_tarball",
    "tarball_path",
    "universe_document",
    "universe_url",
]
