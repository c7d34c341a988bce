"""Many sessions at once, memory over many calls, progress latency, against one real ComfyUI on loopback.

    python bench/load.py sessions [--sessions 64] [--calls 8] [--way streamable-2025]
    python bench/load.py memory [--calls 10000] [--clients 4] [--way streamable-2026] [--deadline 900]
    python bench/load.py progress [--calls 20] [--steps 20] [--interval-ms 20] [--spin]
    python -m bench.load ...

``sessions``: ``--sessions`` SDK clients, each opening its session and making ``--calls`` model-free
calls (``debug_run_workflow``, EmptyImage -> SaveImage) with a progress callback, all at once; then
the same sessions and calls one after another. Prints both walls, their ratio and the progress
notifications received.

``memory``: ``--calls`` model-free calls with progress from ``--clients`` clients; ComfyUI's RSS after
a warm-up and every 1,000 calls. ComfyUI's own history (up to 10,000 entries, not ours) is cleared
between batches so it does not count. Stops at ``--deadline`` seconds.

``progress``: a test-only node (testbed/custom_nodes/progress_clock) sends ``--steps`` progress
updates ``--interval-ms`` apart, noting ``time.time()`` as it calls ComfyUI's progress hook; each
client notes when its progress callback (or, for the raw client, ComfyUI's WebSocket) delivered
that step. Latency = the two stamps' difference (one clock: one machine), median/p90/max per way,
calls of every way interleaved in a shuffled order. ``--spin`` holds the GIL between steps as
sampling does. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import entry_of, process_facts, quantiles  # noqa: E402
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


STEP = re.compile(r"step (\d+)/\d+")


def clock_workflow(steps: int, interval_ms: int, spin: bool) -> dict[str, Any]:
    inputs = {"steps": steps, "interval_ms": interval_ms, "spin": spin, "seed": random.randrange(2**62)}
    return {"1": {"class_type": "ProgressClock", "inputs": inputs}}


def sent_stamps(entry: dict[str, Any]) -> list[float]:
    """When the node called ComfyUI's progress hook for each step (its UI output in the history)."""
    return [float(t) for t in entry["outputs"]["1"]["stamps"]]


async def mcp_latencies(
    client: Any, http: aiohttp.ClientSession, url: str, workflow: dict[str, Any]
) -> list[float]:
    heard: dict[int, float] = {}

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        now = time.time()
        found = STEP.search(message or "")
        if found:
            heard.setdefault(int(found.group(1)), now)

    await client.call_tool("debug_run_workflow", {"workflow": workflow}, progress_callback=on_progress)
    stamps = sent_stamps(await entry_of(http, url, workflow))
    return [heard[step] - stamps[step - 1] for step in sorted(heard)]


class RawProgress:
    """ComfyUI's own WebSocket: when each progress message of a prompt arrived."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url, self.client_id = http, url, uuid.uuid4().hex
        self.heard: dict[str, dict[int, float]] = {}
        self.ended: dict[str, asyncio.Event] = {}

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            now = time.time()
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            data, prompt_id = event.get("data") or {}, (event.get("data") or {}).get("prompt_id")
            if event.get("type") == "progress" and prompt_id:
                self.heard.setdefault(prompt_id, {}).setdefault(int(data["value"]), now)
            elif event.get("type") == "executing" and data.get("node") is None and prompt_id:
                self.ended.setdefault(prompt_id, asyncio.Event()).set()

    async def latencies(self, workflow: dict[str, Any]) -> list[float]:
        body = {"prompt": workflow, "client_id": self.client_id}
        async with self.http.post(f"{self.url}/prompt", json=body) as resp:
            prompt_id = (await resp.json())["prompt_id"]
        await self.ended.setdefault(prompt_id, asyncio.Event()).wait()
        async with self.http.get(f"{self.url}/history/{prompt_id}") as resp:
            stamps = sent_stamps((await resp.json())[prompt_id])
        heard = self.heard.pop(prompt_id, {})
        del self.ended[prompt_id]
        return [heard[step] - stamps[step - 1] for step in sorted(heard)]


async def progress(url: str, calls: int, steps: int, interval_ms: int, spin: bool) -> None:
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        raw = RawProgress(http, url)
        ws = await stack.enter_async_context(http.ws_connect(f"{url}/ws?clientId={raw.client_id}"))
        reader = asyncio.create_task(raw.read(ws))
        stack.callback(reader.cancel)
        ways: dict[str, Any] = {"raw WebSocket": raw.latencies}
        for way in WAYS:
            client = await stack.enter_async_context(connect(way, url))
            ways[way] = lambda w, c=client: mcp_latencies(c, http, url, w)
        found: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(calls + 2):  # two warm-up rounds
            order = list(ways)
            random.shuffle(order)
            for name in order:
                latencies = await ways[name](clock_workflow(steps, interval_ms, spin))
                if i >= 2:
                    found[name].extend(latencies)
    what = "spinning (GIL held)" if spin else "sleeping"
    print(f"progress hook -> client, {calls} calls x {steps} steps {interval_ms} ms apart, {what}")
    print("| way | median ms | p90 ms | max ms | steps heard |")
    print("|---|---:|---:|---:|---:|")
    for name, values in found.items():
        med, p90, top = quantiles(values)
        print(
            f"| {name} | {med * 1000:.2f} | {p90 * 1000:.2f} | {top * 1000:.2f} | "
            f"{len(values)}/{calls * steps} |"
        )


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
    clock = modes.add_parser("progress", help="progress hook -> client latency per way")
    clock.add_argument("--calls", type=int, default=20, help="calls per way")
    clock.add_argument("--steps", type=int, default=20, help="progress updates per call")
    clock.add_argument("--interval-ms", type=int, default=20)
    clock.add_argument("--spin", action="store_true", help="hold the GIL between steps")
    for sub in (many, mem, clock):
        sub.add_argument("--version", default=LATEST, choices=VERSIONS)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the SDK client logs every HTTP request at INFO
    nodes = ["progress_clock"] if args.mode == "progress" else []
    with ComfyServer(args.version, env=DEBUG, test_nodes=nodes) as server:
        print(f"ComfyUI {args.version}")
        if args.mode == "sessions":
            asyncio.run(sessions(server.url, args.way, args.sessions, args.calls))
        elif args.mode == "memory":
            asyncio.run(memory(server, args.way, args.calls, args.clients, args.deadline))
        else:
            asyncio.run(progress(server.url, args.calls, args.steps, args.interval_ms, args.spin))


if __name__ == "__main__":
    main()
