"""What ``verify --repair`` prints: each artifact fetched again, each one quarantined."""

from __future__ import annotations

from pendingops.maintenance.repair import RepairReport


def print_repair(report: RepairReport) -> int:
    """Print the repair's outcome; the exit code is 1 when something had to be quarantined."""
    for sha256 in report.repaired:
        print(f"REPAIRED {sha256}: fetched again from its remote")
    for item in report.quarantined:
        moved = f"; damaged bytes moved to {item.moved_to}" if item.moved_to else ""
        print(f"QUARANTINED {item.sha256}: {item.reason}{moved}")
    print(f"repaired {len(report.repaired)}, quarantined {len(report.quarantined)}", end="")
    if report.quarantined:
        print(" (their content is now 'not downloaded': exports leave it out, the next sync fetches it)")
        return 1
    print()
    return 0
