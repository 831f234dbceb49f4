"""Flow control: how a push-based Rx pipeline is kept bounded, on one event loop, without hanging.

reactivex has no backpressure, so the bounds are built around it:

- **the paced source** (``source.py``) pulls the plugin's units one at a time, and only while the
  **window** (``window.py``) has a free place: at most ``window`` units are between the source and
  the end of the pipeline;
- **the byte budget** (``budget.py``) makes downloads wait while units not yet through the pipeline
  hold ``max_pending_bytes`` of downloaded files;
- **the unit accounts** (``control.py``) give a unit's place and bytes back however it leaves the
  pipeline: at its end, dropped by any operator on the way (noticed by garbage collection, or at a
  stall), or when the stream ends (exactly). A dropped unit is not declared;
- **the loop scheduler** (``scheduler.py``) is what the pipeline is subscribed with, so reactivex's
  own time-based operators (``delay``, ``debounce``, ``buffer_with_time``...) run on the sync's
  loop; emissions that still come from another thread are handed over to the loop before they
  reach a pendingops operator.
"""

from pendingops.flow.budget import ByteBudget
from pendingops.flow.control import STALL_AFTER, Flow
from pendingops.flow.scheduler import LoopObserver, LoopScheduler
from pendingops.flow.source import Units, paced_source
from pendingops.flow.window import Window

__all__ = ["STALL_AFTER", "ByteBudget", "Flow", "LoopObserver", "LoopScheduler", "Units", "Window", "paced_source"]
