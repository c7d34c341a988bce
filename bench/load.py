"""Many sessions at once, and memory over many calls, against one real ComfyUI on loopback.

    python bench/load.py sessions [--sessions 64] [--calls 8] [--way streamable-2025]
    python bench/load.py memory [--calls 10000] [--clients 4] [--way streamable-2026] [--deadline 900]
    python -m bench.load ...

``sessions``: ``--sessions`` SDK clients, each opening its session and making ``--calls`` model-free
calls (``debug_run_workflow``, EmptyImage -> SaveImage) with a progress callback, all at once; then
the same sessions and calls one after another. Prints both walls, their ratio and the progress
notifications received.

``memory``: ``--calls`` model-free calls with progress from ``--clients`` clients; ComfyUI's RSS after
a warm-up and every 1,000 calls. ComfyUI's own history (up to 10,000 entries, not ours) is cleared
between batches so it does not count. Stops at ``--deadline`` seconds. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import process_facts  # noqa: E402
from testbed.mcp_client import WAYS, connect  # noqa: E402
from testbed.sample_workflows import empty_image  # noqa: E402
from testbed.server import LATEST, VERSIONS, ComfyServer  # noqa: E402

DEBUG = {"COMFYUI_MCP_DEBUG_TOOLS": "1"}


class Counter:
    def __init__(self) -> None:
        self.notices = 0
        self.failed = 0

    async def on_progress(self, value: float, total: float | None, message: str | None) -> None:
        self.notices += 1


async def session(url: str, way: str, calls: int, counter: Counter) -> None:
    """One client: open its session, make ``calls`` calls with progress, close."""
    async with connect(way, url) as client:
        for _ in range(calls):
            result = await client.call_tool(
                "debug_run_workflow", {"workflow": empty_image("load")}, progress_callback=counter.on_progress
            )
            data = result.structured_content or {}
            counter.failed += bool(result.is_error or data.get("state") != "succeeded")


async def sessions(url: str, way: str, count: int, calls: int) -> None:
    await session(url, way, 4, Counter())  # first-use costs out of the figures
    together = Counter()
    t0 = time.perf_counter()
    await asyncio.gather(*(session(url, way, calls, together) for _ in range(count)))
    concurrent = time.perf_counter() - t0
    serial_counter = Counter()
    t0 = time.perf_counter()
    for _ in range(count):
        await session(url, way, calls, serial_counter)
    serial = time.perf_counter() - t0
    print(f"{count} {way} sessions x {calls} calls ({count * calls} calls, progress on)")
    print(
        f"  at once:           wall {concurrent:7.2f} s, progress notices {together.notices}, "
        f"failed {together.failed}"
    )
    print(
        f"  one after another: wall {serial:7.2f} s, progress notices {serial_counter.notices}, "
        f"failed {serial_counter.failed}"
    )
    print(f"  ratio at once / one after another: {concurrent / serial:.2f}")


async def memory(server: ComfyServer, way: str, calls: int, clients: int, deadline: float) -> None:
    batch = 1000
    counter = Counter()
    stop_at = time.monotonic() + deadline
    async with aiohttp.ClientSession() as http:

        async def run_batch(size: int) -> None:
            share = [size // clients + (i < size % clients) for i in range(clients)]
            await asyncio.gather(*(session(server.url, way, n, counter) for n in share if n))
            async with http.post(server.url + "/history", json={"clear": True}) as resp:
                resp.raise_for_status()  # ComfyUI's own history is not ours to measure

        await run_batch(200)  # warm-up: imports, caches, first sessions
        before = process_facts(server)["rss_mib"]
        print(f"{clients} {way} clients, progress on; RSS after 200 warm-up calls: {before:.1f} MiB")
        done = 0
        while done < calls and time.monotonic() < stop_at:
            size = min(batch, calls - done)
            await run_batch(size)
            done += size
            rss = process_facts(server)["rss_mib"]
            print(f"  {done:6d} calls: RSS {rss:7.1f} MiB ({rss - before:+.1f})", flush=True)
    if done < calls:
        print(f"  stopped at the {deadline:.0f} s deadline after {done} calls")
    print(f"  failed calls {counter.failed}, progress notices {counter.notices}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    many = modes.add_parser("sessions", help="many sessions at once vs one after another")
    many.add_argument("--sessions", type=int, default=64)
    many.add_argument("--calls", type=int, default=8, help="calls per session")
    many.add_argument("--way", default="streamable-2025", choices=WAYS)
    mem = modes.add_parser("memory", help="ComfyUI's RSS over many calls")
    mem.add_argument("--calls", type=int, default=10_000)
    mem.add_argument("--clients", type=int, default=4)
    mem.add_argument("--way", default="streamable-2026", choices=WAYS)
    mem.add_argument("--deadline", type=float, default=900.0, help="seconds; stops early after it")
    for sub in (many, mem):
        sub.add_argument("--version", default=LATEST, choices=VERSIONS)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the SDK client logs every HTTP request at INFO
    with ComfyServer(args.version, env=DEBUG) as server:
        print(f"ComfyUI {args.version}")
        if args.mode == "sessions":
            asyncio.run(sessions(server.url, args.way, args.sessions, args.calls))
        else:
            asyncio.run(memory(server, args.way, args.calls, args.clients, args.deadline))


if __name__ == "__main__":
    main()
