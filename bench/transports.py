"""Median round trip of a trivial MCP tool call per transport, against a real ComfyUI.

    python -m bench.transports [--version 0.3.75] [--calls 200] [--url http://127.0.0.1:8188]

Starts ComfyUI with the bridge (unless ``--url`` names a running one), then for each way in —
legacy SSE, Streamable HTTP 2025-11-25 (session), Streamable HTTP 2026-07-28 (stateless) — opens one
SDK client, warms up, and times ``call_tool("get_server_info")`` round trips. A plain GET of
``/mcp-bridge/health`` with the same HTTP library is the no-MCP baseline. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from _mcp_clients import WAYS, connect  # noqa: E402

from testbed.server import LATEST, VERSIONS, ComfyServer  # noqa: E402


def summarize(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return f"{statistics.median(ordered) * 1000:8.2f} {p90 * 1000:8.2f} {min(ordered) * 1000:8.2f}"


async def bench(url: str, calls: int, warmup: int) -> None:
    print(f"{'path':<34} {'median':>8} {'p90':>8} {'min':>8}   (ms, {calls} calls after {warmup} warm-ups)")
    async with httpx2.AsyncClient(base_url=url) as http:
        samples = []
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            (await http.get("/mcp-bridge/health")).raise_for_status()
            if i >= warmup:
                samples.append(time.perf_counter() - t0)
        print(f"{'baseline: GET /mcp-bridge/health':<34} {summarize(samples)}")
    for prefix in ("", "/api"):
        for way in WAYS:
            async with connect(way, url + prefix) as client:
                samples = []
                for i in range(warmup + calls):
                    t0 = time.perf_counter()
                    result = await client.call_tool("get_server_info", {})
                    if i >= warmup:
                        samples.append(time.perf_counter() - t0)
                    assert not result.is_error
            print(f"{way + (' ' + prefix if prefix else ''):<34} {summarize(samples)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", default=LATEST, choices=VERSIONS)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--url", help="bench an already running ComfyUI instead of starting one")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the SDK client logs every HTTP request at INFO
    if args.url:
        asyncio.run(bench(args.url.rstrip("/"), args.calls, args.warmup))
        return 0
    with ComfyServer(args.version) as server:
        print(f"ComfyUI {args.version} at {server.url}")
        asyncio.run(bench(server.url, args.calls, args.warmup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
