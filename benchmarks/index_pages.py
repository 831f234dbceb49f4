"""What reading a hostile simple index page costs the python plugin: time for HTML pages holding an
unterminated construct (goal: 32 MiB in at most 4.5x the time of 8 MiB), memory for PEP 691 JSON
project pages (goal: an 8 MiB page under 40 MiB at peak).

    .venv/bin/python benchmarks/index_pages.py [--sizes 4,8,16,32] [--chunk 16384] [--repeat 3]
    .venv/bin/python benchmarks/index_pages.py --only time      # or --only memory
    .venv/bin/python benchmarks/index_pages.py --only time --stdlib-sizes 1,2,4   # and html.parser, as before

Time: each page is a few anchors, then one construct that never ends (a comment, a start tag of
attributes, a quoted or unquoted attribute value, a CDATA section, script or style text, a
declaration, a processing instruction, an end tag, an anchor's text) filling the page to its size;
two more pages are not unterminated but as dense as markup gets (stray ``<``, empty tags). Each is fed
to the root page reader (the project page reader is the same) in chunks of ``--chunk`` characters, as
the page streams in. The figure is CPU seconds (user + system of this process: a busy machine
inflates it far less than wall time), the fastest of ``--repeat`` runs (a read shorter than 0.1 s is
repeated until the reads add up to 0.1 s, and averaged, so that no figure is timer noise), and the
slowest single chunk (CPU milliseconds) of the largest page: the work one chunk holds the event loop
for (the plugin feeds a chunk 16 KiB at a time, letting the loop run other tasks in between).
``--stdlib-sizes`` also reads the comment and quoted-value pages with the standard library's
``html.parser``, the way the plugin did before (it scans an open construct again from its start at
every chunk).

Memory: an 8 MiB PEP 691 project page of ``{}`` entries and one of file entries as PyPI writes them,
served from another process, read by the plugin's project page path (``_project_page``: the fetcher
streams it, the reader keeps the file links) in a fresh process per figure: the tracemalloc peak, and
the growth of the peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs`` before the read, less
``VmRSS`` then). "whole page" reads the same page the way the plugin did before it streamed project
pages (the body joined, decoded and given to ``json.loads``), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

GOAL_RATIO = 4.5
GOAL_PEAK_MIB = 40
MIB = 1024 * 1024
_HEAD = '<!DOCTYPE html>\n<html><body>\n<a href="alpha/">alpha</a>\n<a href="beta/">beta</a>\n'
#: kind: (what opens the construct, what fills the page after it)
UNTERMINATED = {
    "comment": ("<!--", "a <a href='x/'>x</a> -- -> "),
    "start tag": ("<a ", 'href=x data-x="y" z '),
    "quoted value": ('<a href="', "<a href=x/>x</a> > "),
    "unquoted value": ("<a href=", "x&amp;y"),
    "CDATA": ("<![CDATA[", "<a href=x/>x</a> ]] > "),
    "script": ("<script>", "</scrip <a href=x/>x</a> "),
    "style": ("<style>", "a > b { } </styl "),
    "declaration": ("<!DOCTYPE ", "html PUBLIC 'x' "),
    "instruction": ("<?xml ", "version='1.0' ? "),
    "end tag": ("</a ", 'x="y" '),
    "anchor text": ('<a href="x/">', "text &amp; more "),
}
DENSE = {"stray <": ("", "< "), "empty tags": ("", "<b>")}


def _page(opening: str, filler: str, size: int) -> str:
    start = _HEAD + opening
    return start + filler * ((size - len(start)) // len(filler))


def _parse(page: str, chunk: int) -> tuple[float, float, int]:
    """(CPU seconds, slowest chunk in CPU seconds, names found) for one read of ``page``."""
    from pendingops.plugins.python.index_page import RootPage

    reader = RootPage()
    found, slowest = 0, 0.0
    cpu = time.process_time()
    for start in range(0, len(page), chunk):
        began = time.thread_time()
        found += sum(1 for _ in reader.feed(page[start : start + chunk]))
        slowest = max(slowest, time.thread_time() - began)
    found += sum(1 for _ in reader.close())
    return time.process_time() - cpu, slowest, found


class _StdlibAnchors(HTMLParser):
    """Anchor texts the way the plugin read them before its own reader: the standard library's parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.names = 0
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open = self._open or tag == "a"

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            self.names, self._open = self.names + 1, False


def _parse_stdlib(page: str, chunk: int) -> tuple[float, float, int]:
    reader = _StdlibAnchors()
    slowest = 0.0
    cpu = time.process_time()
    for start in range(0, len(page), chunk):
        began = time.thread_time()
        reader.feed(page[start : start + chunk])
        slowest = max(slowest, time.thread_time() - began)
    reader.close()
    return time.process_time() - cpu, slowest, reader.names


def run_stdlib(sizes: list[int], chunk: int) -> None:
    print("\nthe same pages read by the standard library's html.parser (as the plugin did before), one run each")
    print(f"{'kind':16}" + "".join(f"{size} MiB".rjust(10) for size in sizes) + "  slowest chunk")
    for kind in ("comment", "quoted value"):
        opening, filler = UNTERMINATED[kind]
        figures = [_parse_stdlib(_page(opening, filler, size * MIB), chunk) for size in sizes]
        cells = "".join(f"{cpu:10.3f}" for cpu, _, _ in figures)
        print(f"{kind:16}{cells}  {figures[-1][1] * 1000:10.1f} ms")


def run_time(sizes: list[int], chunk: int, repeat: int) -> bool:
    print(f"HTML root page with one construct left open, fed {chunk} characters at a time (CPU s, best of {repeat})")
    header = "".join(f"{size} MiB".rjust(10) for size in sizes)
    print(f"{'kind':16}{header}  {'ratio':>14}  slowest chunk  names")
    met = True
    for kind, (opening, filler) in {**UNTERMINATED, **DENSE}.items():
        figures, slowest, names = [], 0.0, 0
        for size in sizes:
            page = _page(opening, filler, size * MIB)
            first = _parse(page, chunk)
            # a read of a few ms is repeated, so that each figure is at least 0.1 s of CPU and not timer noise
            reads = max(1, math.ceil(0.1 / max(first[0], 1e-4)))
            runs = [first] + [_parse(page, chunk) for _ in range(repeat * reads - 1)]
            figures.append(
                min(sum(cpu for cpu, _, _ in runs[i : i + reads]) / reads for i in range(0, len(runs), reads))
            )
            slowest, names = min(s for _, s, _ in runs), first[2]
            del page
        ratio = ""
        if 8 in sizes and 32 in sizes:
            value = figures[sizes.index(32)] / max(figures[sizes.index(8)], 1e-9)
            ratio = f"32/8 = {value:.2f}"
            met = met and value <= GOAL_RATIO
        cells = "".join(f"{figure:10.3f}" for figure in figures)
        print(f"{kind:16}{cells}  {ratio:>14}  {slowest * 1000:10.1f} ms  {names}")
    verdict = ("met" if met else "NOT MET") if 8 in sizes and 32 in sizes else "not measured (--sizes needs 8 and 32)"
    print(f"goal: 32 MiB within {GOAL_RATIO}x the time of 8 MiB for every kind:", verdict)
    return met


# -- memory -------------------------------------------------------------------------------------


def _empty_entries(size: int) -> bytes:
    head, tail = b'{"meta": {"api-version": "1.1"}, "name": "big", "files": [', b"{}]}"
    return head + b"{}, " * ((size - len(head) - len(tail)) // 4) + tail


def _file_entries(size: int) -> bytes:
    """File entries as PyPI's JSON pages have them (api-version 1.1, with sizes and upload times)."""
    entries, total, index = [], 100, 0
    while total < size:
        version = f"{index // 20}.{index % 20}.0"
        name = f"big-{version}-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        entry = {
            "core-metadata": {"sha256": f"{index:064x}"},
            "data-dist-info-metadata": {"sha256": f"{index:064x}"},
            "filename": name,
            "hashes": {"sha256": f"{index + 1:064x}"},
            "requires-python": ">=3.8",
            "size": 1_234_567 + index,
            "upload-time": "2024-05-06T07:08:09.123456Z",
            "url": f"https://files.example.org/packages/{index % 256:02x}/{index:08x}/{name}",
            "yanked": False,
        }
        text = json.dumps(entry)
        entries.append(text)
        total += len(text) + 2
        index += 1
    return ('{"meta": {"api-version": "1.1"}, "name": "big", "files": [' + ", ".join(entries) + "]}").encode()


PAGES: dict[str, Callable[[int], bytes]] = {"{} entries": _empty_entries, "file entries": _file_entries}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _read(url: str, mode: str) -> int:
    """Read the page at ``url`` as the plugin does (or the whole-page way); how many links it gave."""
    from pendingops.download.fetcher import Fetcher
    from pendingops.plugins.python.plugin import _project_page
    from pendingops.remote import RemoteConfig
    from pendingops.storage.local import LocalStorage

    with tempfile.TemporaryDirectory() as folder:
        async with Fetcher(RemoteConfig(url=url), LocalStorage(folder)) as fetcher:
            if mode == "streamed":
                return len(await _project_page(url, "big", fetcher))
            chunks = [chunk async for chunk in fetcher.stream(url + "big/")]
            document = json.loads(b"".join(chunks).decode("utf-8", errors="replace"))
            return len(document["files"])


def measure(url: str, mode: str, meter: str) -> dict[str, float]:
    """One figure in this process: the read's tracemalloc peak or its RSS growth, in bytes (imports
    done first: they are no part of the page's cost)."""
    import pendingops.download.fetcher
    import pendingops.plugins.python.plugin
    import pendingops.storage.local  # noqa: F401

    if meter == "tracemalloc":
        tracemalloc.start()
        links = asyncio.run(_read(url, mode))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return {"peak": peak, "links": links}
    asyncio.run(asyncio.sleep(0))  # the loop's own first allocations are not the page's
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status("VmRSS")
    links = asyncio.run(_read(url, mode))
    return {"peak": _status("VmHWM") - before, "links": links}


def _serve(path: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        raise RuntimeError("the page server did not start")
    return process, f"http://127.0.0.1:{port}/simple/"


def run_memory(size_mib: int) -> bool:
    print(f"\nPEP 691 project page of {size_mib} MiB, read from a server in another process (peak MiB above the start)")
    print(f"{'page':14}{'read':>12}{'tracemalloc':>13}{'RSS growth':>12}  links")
    met = True
    with tempfile.TemporaryDirectory() as folder:
        for label, make in PAGES.items():
            path = Path(folder) / "page.json"
            path.write_bytes(make(size_mib * MIB))
            server, url = _serve(path)
            try:
                for mode in ("streamed", "whole page"):
                    figures = {}
                    for meter in ("tracemalloc", "rss"):
                        command = [sys.executable, __file__, "--measure", url, mode, meter]
                        figures[meter] = json.loads(subprocess.run(command, capture_output=True, check=True).stdout)
                    peaks = [figures[m]["peak"] / MIB for m in ("tracemalloc", "rss")]
                    if mode == "streamed":
                        met = met and max(peaks) < GOAL_PEAK_MIB
                    links = int(figures["rss"]["links"])
                    print(f"{label:14}{mode:>12}{peaks[0]:13.1f}{peaks[1]:12.1f}  {links}")
            finally:
                server.terminate()
                server.wait()
    print(f"goal: a streamed {size_mib} MiB page under {GOAL_PEAK_MIB} MiB at peak:", "met" if met else "NOT MET")
    return met


async def _serve_forever(path: str) -> None:
    """Answer every GET with the bytes of ``path`` (a project page at any URL), in 64 KiB writes."""
    from aiohttp import web

    body = Path(path).read_bytes()

    async def page(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.pypi.simple.v1+json"})
        await response.prepare(request)
        for start in range(0, len(body), 65536):
            await response.write(body[start : start + 65536])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{path:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4,8,16,32", help="HTML page sizes in MiB (default 4,8,16,32)")
    parser.add_argument(
        "--chunk", type=int, default=16384, help="characters fed at a time (default 16384, as the plugin)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest counts (default 3)")
    parser.add_argument("--json-mib", type=int, default=8, help="JSON project page size in MiB (default 8)")
    parser.add_argument("--only", choices=("time", "memory"), help="run one half only")
    parser.add_argument(
        "--stdlib-sizes", default="", help="also time html.parser (the reader before) at these sizes in MiB: 1,2,4"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve_forever(args.serve))
        return 0
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    met = True
    if args.only in (None, "time"):
        met = run_time([int(size) for size in args.sizes.split(",")], args.chunk, args.repeat) and met
        if args.stdlib_sizes:
            run_stdlib([int(size) for size in args.stdlib_sizes.split(",")], args.chunk)
    if args.only in (None, "memory"):
        met = run_memory(args.json_mib) and met
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
