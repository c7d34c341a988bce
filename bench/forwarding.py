"""What forwarding to the owning instance adds to ``wait_job`` (issue 16), on the real test-bed cluster.

    python -m bench.forwarding [--calls 50]

Starts two CPU ComfyUIs (``a``, ``b``, peers of each other) and HAProxy (testbed.cluster), finishes
one tiny job on ``a``, then times ``wait_job`` of that finished job with one 2026-07-28 SDK client
per path: straight to ``a`` (no forwarding) and to ``b`` (forwarded to ``a`` over MCP). The
difference of the medians is the forwarding overhead. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from testbed.cluster import Cluster, haproxy_version
from testbed.mcp_client import connect

ARGS = {"prompt": "a fox", "width": 64, "height": 64, "steps": 1, "seed": 1}


async def timed(url: str, job_id: str, calls: int, warmup: int = 5) -> list[float]:
    samples = []
    async with connect("streamable-2026", url) as client:
        for i in range(warmup + calls):
            started = time.perf_counter()
            result = await client.call_tool("wait_job", {"job_id": job_id, "timeout_s": 10})
            elapsed = time.perf_counter() - started
            assert not result.is_error and result.structured_content["state"] == "succeeded"  # type: ignore[index]
            if i >= warmup:
                samples.append(elapsed)
    return samples


def line(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return f"{name:<32} {statistics.median(ordered) * 1000:8.2f} {p90 * 1000:8.2f} {ordered[0] * 1000:8.2f}"


async def bench(cluster: Cluster, calls: int) -> None:
    a, b = cluster.instances["a"], cluster.instances["b"]
    async with connect("streamable-2026", a.url) as client:
        made: Any = await client.call_tool("generate_image", ARGS)
        job_id = made.structured_content["job_id"]
        state = made.structured_content["state"]
        while state in ("queued", "running"):  # calls wait at most 1 s on this cluster
            waited: Any = await client.call_tool("wait_job", {"job_id": job_id, "timeout_s": 30})
            state = waited.structured_content["state"]
    direct = await timed(a.url, job_id, calls)
    forwarded = await timed(b.url, job_id, calls)
    print(f"{'wait_job of a finished job':<32} {'median':>8} {'p90':>8} {'min':>8}   (ms, {calls} calls)")
    print(line("on its owner (a)", direct))
    print(line("on b, forwarded to a", forwarded))
    overhead = statistics.median(forwarded) - statistics.median(direct)
    print(f"forwarding overhead (median): {overhead * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    print(haproxy_version())
    with Cluster(env={"COMFYUI_MCP_CALL_WAIT_S": "1"}).running() as cluster:
        asyncio.run(bench(cluster, args.calls))


if __name__ == "__main__":
    main()
