"""What the bridge costs: a model-free workflow through ComfyUI's HTTP API vs. through an MCP call.

(a) what an external bridge does: ``POST /prompt`` + wait on ComfyUI's WebSocket + ``GET /history``;
    (and the same plus ``GET /view`` of the image, which a bridge needs before it can return it);
(b) an MCP tool call of ours (queued in-process, followed by hook, result with a preview), over
    Streamable HTTP (2025 session and 2026 stateless) and legacy SSE.
Interleaved on one ComfyUI so drift hits all paths alike; every workflow differs (no cache hits).

    python bench/overhead.py [--runs 50] [--version 0.3.75]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.mcp_client import connect  # noqa: E402
from testbed.sample_workflows import empty_image  # noqa: E402
from testbed.server import LATEST, VERSIONS, ComfyServer  # noqa: E402


def workflow() -> dict[str, Any]:
    return empty_image("bench")


async def raw_http(
    http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, url: str, cid: str, fetch: bool = False
) -> float:
    t0 = time.perf_counter()
    async with http.post(f"{url}/prompt", json={"prompt": workflow(), "client_id": cid}) as resp:
        prompt_id = (await resp.json())["prompt_id"]
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            event = json.loads(msg.data)
            data = event.get("data", {})
            if (
                event["type"] == "executing"
                and data.get("node") is None
                and data.get("prompt_id") == prompt_id
            ):
                break
    async with http.get(f"{url}/history/{prompt_id}") as resp:
        entry = (await resp.json())[prompt_id]
    assert entry["status"]["status_str"] == "success"
    if fetch:  # what an external bridge needs before it can return the image to its client
        (image,) = entry["outputs"]["2"]["images"]
        async with http.get(f"{url}/view", params=image) as resp:
            assert len(await resp.read()) > 0
    return time.perf_counter() - t0


async def run(runs: int, version: str) -> None:
    server = ComfyServer(version, env={"COMFYUI_MCP_DEBUG_TOOLS": "1"})
    server.start()
    try:
        cid = uuid.uuid4().hex
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{server.url}/ws?clientId={cid}") as ws,
            connect("streamable-2025", server.url) as s2025,
            connect("streamable-2026", server.url) as s2026,
            connect("sse", server.url) as sse,
        ):
            clients = {
                "MCP Streamable HTTP 2025": s2025,
                "MCP Streamable HTTP 2026": s2026,
                "MCP legacy SSE": sse,
            }
            raw, fetched = "raw POST /prompt + WS + /history", "raw ... + GET /view of the image"
            times: dict[str, list[float]] = {raw: [], fetched: [], **{k: [] for k in clients}}

            async def mcp_call(client: Any) -> float:
                t0 = time.perf_counter()
                result = await client.call_tool("debug_run_workflow", {"workflow": workflow()})
                assert not result.is_error, result.content
                return time.perf_counter() - t0

            for i in range(runs + 5):  # 5 warm-up rounds
                samples = {
                    raw: await raw_http(http, ws, server.url, cid),
                    fetched: await raw_http(http, ws, server.url, cid, fetch=True),
                }
                for name, client in clients.items():
                    samples[name] = await mcp_call(client)
                if i >= 5:
                    for name, value in samples.items():
                        times[name].append(value)
        base = statistics.median(times[raw])
        print(f"ComfyUI {version}, {runs} interleaved runs of EmptyImage 64x64 -> SaveImage")
        for name, values in times.items():
            med = statistics.median(values)
            p90 = statistics.quantiles(values, n=10)[-1]
            print(
                f"  {name:36s} median {med * 1000:7.2f} ms  p90 {p90 * 1000:7.2f} ms  ratio {med / base:5.2f}"
            )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--version", default=LATEST, choices=VERSIONS)
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.version))


if __name__ == "__main__":
    main()
