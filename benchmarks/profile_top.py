"""Summarise a py-spy raw profile (``run.py --profile DIR`` writes them): where the samples go.

    .venv/bin/python benchmarks/profile_top.py DIR/sqlite-initial-sync.txt [--top 25] [--match pendingops/]

Prints the samples per thread, then the functions with the most samples on top of the stack
(self) and anywhere in the stack (inclusive), with their share of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    """``func (…/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3", "/pendingops/", "/benchmarks/"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            path = tail if marker == "site-packages/" else marker.strip("/") + "/" + tail
            break
    return f"{match['name']} ({path})"


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only list functions whose file contains this")
    parser.add_argument("--thread", default="", help="only count threads whose name contains this (MainThread)")
    args = parser.parse_args(argv)
    stacks = load(args.profile)
    total = sum(count for _, count in stacks) or 1
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        thread = next((f for f in frames if f.startswith("thread ")), "all threads")
        if args.thread not in thread:
            continue
        code = [short(f) for f in frames if not f.startswith(("process ", "thread "))]
        if not code:
            continue
        threads[thread] += count
        own[code[-1]] += count
        for name in set(code):
            inclusive[name] += count
    print(
        f"{total} samples in {args.profile.name}"
        + (f" ({sum(threads.values())} in {args.thread})" if args.thread else "")
    )
    for thread, count in threads.most_common():
        print(f"  {100 * count / total:5.1f}%  {thread}")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"\nTop {args.top} by {title} samples:")
        shown = [(name, count) for name, count in counter.most_common() if args.match in name][: args.top]
        for name, count in shown:
            print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
