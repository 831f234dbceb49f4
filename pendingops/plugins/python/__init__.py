"""The python plugin: distributions (wheels and sdists) from a PEP 503/691 simple index.

``sync URL --plugin python`` reads the index root at URL (HTML or PEP 691 JSON, streamed: a root
may list hundreds of thousands of projects), or only the projects named by ``--option
projects=a,b``, fetches project pages a few at a time as the stream flows, and emits one unit per
file: natural key (filename, sha256, yanked, yanked_reason), so a later yank makes a new unit.
``pendingops serve`` publishes every version as a simple index under ``simple/`` (HTML, or PEP 691
JSON when asked for), whose file links point back into the same server; ``export`` writes it as
static pages.
"""

from pendingops.plugins.python.content import PythonContent
from pendingops.plugins.python.plugin import PythonPlugin

__all__ = ["PythonContent", "PythonPlugin"]
