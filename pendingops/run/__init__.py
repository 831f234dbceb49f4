"""The parts of a sync below its operators: what a sync reports, the sync an operator runs in, the
locks it keeps through an outage, and its run record with the remote-unchanged shortcut.

``pendingops.context.SyncContext`` binds them; operators and plugins reach the sync they run in
through ``run.current`` without importing the context, which appends the association operator.
"""
