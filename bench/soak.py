"""Soak: many clients and the faults of issue 13 at once, against one real ComfyUI on loopback.

    python bench/soak.py [--clients 8] [--calls 25] [--version 0.3.75]

At the same time:
- ``--clients`` SDK clients per way in (legacy SSE, Streamable HTTP 2025 session, 2026 stateless),
  each making ``--calls`` fast model-free jobs (EmptyImage -> SaveImage through ``debug_run_workflow``)
  with a progress callback;
- clients that leave mid-call (their call is cancelled a few milliseconds in);
- one legacy SSE client that never reads its stream and keeps posting until it is refused;
- slow bodies: connections sending one byte a second, more of them than ``max_open_requests`` places.

Prints the calls made, the slowest call minus its job's execution time (from ComfyUI's history),
sessions, loop tasks and ComfyUI's RSS before and after, and the log lines written. Bounded: the
numbers of clients and calls are fixed, every part has a deadline; loopback only. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import execution, process_facts  # noqa: E402
from testbed.mcp_client import WAYS, connect  # noqa: E402
from testbed.raw_mcp import INITIALIZE, NonReadingSse, message, slow_body  # noqa: E402
from testbed.sample_workflows import empty_image  # noqa: E402
from testbed.server import LATEST, VERSIONS, ComfyServer  # noqa: E402

LIMITS = {  # small enough that every fault meets its limit within the run
    "COMFYUI_MCP_DEBUG_TOOLS": "1",
    "COMFYUI_MCP_MAX_OPEN_REQUESTS": "64",
    "COMFYUI_MCP_REQUEST_BODY_TIMEOUT_S": "5",
    "COMFYUI_MCP_STREAM_STALL_TIMEOUT_S": "5",
}
SLOW_BODIES = 80  # more than max_open_requests
DEADLINE_S = 600.0


def workflow() -> dict[str, Any]:
    return empty_image("soak")


class Soak:
    """One run's counters."""

    def __init__(self, server: ComfyServer) -> None:
        self.server = server
        self.calls: list[tuple[float, float, str]] = []  # (wall seconds, epoch at return, prompt id)
        self.errors: list[str] = []
        self.progress = 0
        self.left_mid_call = 0
        self.slow_statuses: list[int] = []
        self.sse_posts: dict[int, int] = {}

    async def client(self, kind: str, calls: int) -> None:
        async def on_progress(progress: float, total: float | None, text: str | None) -> None:
            self.progress += 1

        async with connect(kind, self.server.url) as client:
            for _ in range(calls):
                start = time.perf_counter()
                result = await client.call_tool(
                    "debug_run_workflow", {"workflow": workflow()}, progress_callback=on_progress
                )
                wall = time.perf_counter() - start
                data = result.structured_content or {}
                if result.is_error or data.get("state") != "succeeded":
                    self.errors.append(f"{kind}: {str(result.content)[:200]}")
                else:
                    self.calls.append((wall, time.time(), str(data["prompt_ids"][0])))

    async def leaver(self, kind: str) -> None:
        async with connect(kind, self.server.url) as client:
            with anyio.move_on_after(random.uniform(0.001, 0.02)):
                await client.call_tool("debug_sleep", {"seconds": 30})
            self.left_mid_call += 1

    async def non_reader(self, http: aiohttp.ClientSession) -> None:
        async with NonReadingSse("127.0.0.1", self.server.port) as sse:
            await sse.post(http, INITIALIZE)
            for n in range(20_000):
                status, _ = await sse.post(http, message("tools/list", id=n + 10))
                self.sse_posts[status] = self.sse_posts.get(status, 0) + 1
                if status == 404:  # the stalled stream was closed and its session dropped
                    break
                if status == 429:
                    await anyio.sleep(0.2)

    async def slow(self) -> None:
        self.slow_statuses.append(await slow_body("127.0.0.1", self.server.port, interval=1.0))


async def _wait(job: Awaitable[None]) -> None:
    await job


async def state(http: aiohttp.ClientSession, server: ComfyServer) -> dict[str, Any]:
    async with http.get(server.url + "/mcp-bridge/sessions") as resp:
        counts: dict[str, Any] = (await resp.json())["counts"]
    return {**counts, **await asyncio.to_thread(process_facts, server)}


async def settle(http: aiohttp.ClientSession, server: ComfyServer, before: dict[str, Any]) -> None:
    """Wait (bounded) until sessions and requests are back where they were."""
    with anyio.move_on_after(30):
        while True:
            now = await state(http, server)
            if (
                now["sessions"] <= before["sessions"]
                and now["open_requests"] <= 1
                and now["reading_requests"] == 0
            ):
                return
            await anyio.sleep(0.25)


async def run(clients: int, calls: int, version: str) -> None:
    server = ComfyServer(version, env=LIMITS)
    server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with connect("streamable-2026", server.url) as warm:  # first-use costs out of the figures
                await warm.call_tool("debug_run_workflow", {"workflow": workflow()})
            before = await state(http, server)
            before_lines = int(before["log_lines"])
            soak = Soak(server)
            started = time.perf_counter()
            with anyio.fail_after(DEADLINE_S):
                async with anyio.create_task_group() as tg:
                    jobs: list[Awaitable[None]] = [soak.non_reader(http)]
                    jobs += [soak.slow() for _ in range(SLOW_BODIES)]
                    for kind in WAYS:
                        jobs += [soak.client(kind, calls) for _ in range(clients)]
                        jobs += [soak.leaver(kind) for _ in range(max(1, clients // 2))]
                    for job in jobs:
                        tg.start_soon(_wait, job)
            elapsed = time.perf_counter() - started
            await settle(http, server, before)
            after = await state(http, server)
            overheads, lags = [], []
            for wall, returned, job in soak.calls:
                ran_from, ended = await execution(http, server.url, job)
                ran = ended - ran_from
                overheads.append((wall - ran, wall, job))
                lags.append(returned - ended)
            prompts = sum("Prompt executed" in line for line in server.log_text().splitlines()[before_lines:])
    finally:
        server.stop()
    print(f"ComfyUI {version}: {len(WAYS)} ways in x {clients} clients x {calls} calls, in {elapsed:.1f} s")
    print(
        f"  calls succeeded {len(soak.calls)}, failed {len(soak.errors)}, "
        f"progress notifications {soak.progress}"
    )
    for error in soak.errors[:3]:
        print(f"    {error}")
    print(f"  clients that left mid-call {soak.left_mid_call}")
    print(f"  non-reading SSE client: POST answers {dict(sorted(soak.sse_posts.items()))}")
    print(
        f"  slow bodies: answers {sorted(set(soak.slow_statuses))} for {len(soak.slow_statuses)} connections"
    )
    if overheads:
        slowest = max(overheads, key=lambda o: o[1])
        worst = max(overheads)
        print(
            f"  slowest call {slowest[1] * 1000:.1f} ms, "
            f"minus its job's execution: {slowest[0] * 1000:.1f} ms"
        )
        print(f"  largest call minus execution {worst[0] * 1000:.1f} ms (call {worst[1] * 1000:.1f} ms)")
        median_lag = sorted(lags)[len(lags) // 2]
        print(
            f"  latest return after its job's end {max(lags) * 1000:.1f} ms "
            f"(median {median_lag * 1000:.1f} ms)"
        )
    for key in ("sessions", "stateless_clients", "open_requests", "loop_tasks", "rss_mib", "log_lines"):
        print(f"  {key:18s} before {before[key]:>8.0f}   after {after[key]:>8.0f}")
    written = after["log_lines"] - before["log_lines"]
    print(
        f"  log lines written during the run: {written:.0f}, of them ComfyUI's 'Prompt executed': {prompts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8, help="SDK clients per way in (default 8)")
    parser.add_argument("--calls", type=int, default=25, help="calls per client (default 25)")
    parser.add_argument("--version", default=LATEST, choices=VERSIONS)
    args = parser.parse_args()
    asyncio.run(run(args.clients, args.calls, args.version))


if __name__ == "__main__":
    main()
