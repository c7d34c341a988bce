"""Lifecycle inside a real ComfyUI: killed clients, many sessions, a responsive server, a prompt exit.

One ComfyUI per version for this module, with the diagnostic tools on (``debug_sleep``) and a short
session idle timeout. The SIGTERM test stops it, so it runs last.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from _mcp_clients import WAYS, connect

from testbed.server import VERSIONS, ComfyServer

pytestmark = pytest.mark.anyio

IDLE_TIMEOUT_S = 5


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"comfyui-{v}" for v in VERSIONS])
def server(request: pytest.FixtureRequest) -> Iterator[ComfyServer]:
    env = {"COMFYUI_MCP_DEBUG_TOOLS": "1", "COMFYUI_MCP_SESSION_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}
    comfy = ComfyServer(request.param, env=env)
    comfy.start()
    yield comfy
    comfy.stop()


def counts(server: ComfyServer) -> dict[str, Any]:
    data = server.get_json("/mcp-bridge/sessions")
    assert isinstance(data, dict)
    result: dict[str, Any] = data["counts"]
    return result


async def wait_until(check: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll ``check`` (which reads the server's counters) until it holds; a bound, not a measurement."""
    with anyio.fail_after(limit_s):
        while not await anyio.to_thread.run_sync(check):  # noqa: ASYNC110 - the state lives in another process
            await anyio.sleep(0.1)


async def settled(server: ComfyServer) -> int:
    """Wait for no MCP activity at all; return the loop's task count then."""
    await wait_until(
        lambda: (
            (c := counts(server))["sessions"] == 0 and c["open_requests"] == 0 and c["calls_in_flight"] == 0
        )
    )
    return int(counts(server)["loop_tasks"])


CLIENT = textwrap.dedent(
    """
    import anyio, sys
    sys.path[:0] = [{paths!r}]
    from testbed.mcp_client import connect

    async def main():
        async with connect({kind!r}, {url!r}) as client:
            await client.list_tools()
            print("calling", flush=True)
            await client.call_tool("debug_sleep", {{"seconds": {seconds}}})

    anyio.run(main)
    """
)


@pytest.mark.parametrize(
    ("kind", "seconds"), [("sse", 600), ("streamable-2026", 600), ("streamable-2025", 1)]
)
async def test_a_client_killed_mid_call_leaves_nothing_behind(
    server: ComfyServer, kind: str, seconds: int
) -> None:
    """SSE and 2026: the disconnect cancels the call. 2025: the call completes (a dropped stream is not a
    cancel in that era) and the orphaned session is reaped after the idle timeout."""
    for way in WAYS:  # from here on the session manager and sse-starlette's process-wide watcher exist
        async with connect(way, server.url) as warm:
            await warm.call_tool("get_server_info", {})
    baseline = await settled(server)
    here = str(Path(__file__).resolve().parents[2])  # the repository root, for testbed
    code = CLIENT.format(paths=here, kind=kind, url=server.url, seconds=seconds)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220
    try:
        assert proc.stdout is not None
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.strip() == "calling"
        await wait_until(lambda: counts(server)["calls_in_flight"] == 1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await wait_until(
            lambda: (
                (c := counts(server))["calls_in_flight"] == 0
                and c["sessions"] == 0
                and c["open_requests"] == 0
                and c["loop_tasks"] <= baseline
            ),
            limit_s=30 + IDLE_TIMEOUT_S,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_fifty_sessions_open_with_comfyui_responsive_then_counts_return_to_zero(
    server: ComfyServer,
) -> None:
    await settled(server)
    async with contextlib.AsyncExitStack() as stack:
        for i in range(50):
            client = await stack.enter_async_context(
                connect("sse" if i % 5 == 0 else "streamable-2025", server.url)
            )
            await client.list_tools()
        slow = await stack.enter_async_context(connect("streamable-2026", server.url))
        now = counts(server)
        assert now["sessions"] == 50 and now["sse_streams"] == 10
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow.call_tool, "debug_sleep", {"seconds": 1})
            # ComfyUI's own routes answer while 50 sessions, their streams and a tool call are open.
            async with httpx2.AsyncClient(base_url=server.url, timeout=30) as http:
                for path in ("/system_stats", "/queue", "/object_info/SaveImage", "/mcp-bridge/health"):
                    assert (await http.get(path)).status_code == 200, path
                empty = {"width": 8, "height": 8, "batch_size": 1, "color": 0}
                prompt = {
                    "prompt": {
                        "1": {"class_type": "EmptyImage", "inputs": empty},
                        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
                    }
                }
                assert (await http.post("/prompt", json=prompt)).status_code == 200
    await wait_until(lambda: counts(server)["sessions"] == 0 and counts(server)["open_requests"] == 0)
    final = counts(server)
    assert final["sse_streams"] == 0 and final["standalone_streams"] == 0 and final["calls_in_flight"] == 0


async def test_sigterm_with_streams_open_exits_promptly(server: ComfyServer) -> None:
    """Runs last in the module: it stops the module's server."""
    ended: list[str] = []

    async def hold(kind: str) -> None:
        with contextlib.suppress(Exception):
            async with connect(kind, server.url) as client:
                await client.call_tool("debug_sleep", {"seconds": 600})
        ended.append(kind)

    async with anyio.create_task_group() as tg:
        for kind in ("sse", "streamable-2025", "streamable-2026"):
            tg.start_soon(hold, kind)
        await wait_until(lambda: counts(server)["calls_in_flight"] == 3)
        code = await anyio.to_thread.run_sync(lambda: server.stop(timeout=15))
        assert code == -signal.SIGTERM  # it went down on SIGTERM; stop() did not need SIGKILL
        with anyio.fail_after(60):
            while len(ended) < 3:  # noqa: ASYNC110 - set by the client tasks as they notice
                await anyio.sleep(0.1)
    assert sorted(ended) == ["sse", "streamable-2025", "streamable-2026"]
