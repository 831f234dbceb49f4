"""The deb plugin: binary packages from a Debian (APT) archive, served back for apt-get.

``sync URL --plugin deb --option suites=bookworm`` reads the archive root at URL (the folder holding
``dists/`` and ``pool/``): each suite's InRelease (or Release and Release.gpg), the Packages index
of each component and architecture it lists (checked against the Release's size and SHA256), and
every package file (checked against its stanza's Size and SHA256). A unit is one binary package,
natural key (package, version, architecture, sha256); each suite is one more unit holding its
Release files and index files as fetched. A version that is the upstream's set is published as
the upstream published it (apt checks the upstream's signature); any other gets our own indexes,
signed with ``signing_key`` when one is given.

Modules: ``options`` (names allowed), ``stanza`` (deb822 reading and writing), ``release``
(InRelease and Release), ``packages`` (decompressing and checking an index), ``catalog`` (the
selected packages, on disk), ``source`` (fetching and emitting units), ``members`` (which packages
each suite lists), ``publish`` (verbatim or our own ``dists/``), ``signing`` (gpg).
"""

from pendingops.plugins.deb.content import DebPackage, DebRelease
from pendingops.plugins.deb.plugin import DebPlugin

__all__ = ["DebPackage", "DebPlugin", "DebRelease"]
