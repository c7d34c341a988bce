"""ComfyUI's log stays readable under careless clients: no traceback per request, one line per kind."""

from __future__ import annotations

import anyio
import pytest
from _mcp_clients import WAYS, connect
from mcp.shared.exceptions import MCPError

from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio

REPEATS = 10


def new_lines(server: ComfyServer, start: int) -> list[str]:
    return server.log_text().splitlines()[start:]


@pytest.mark.parametrize("kind", WAYS)
async def test_unknown_prompts_are_the_callers_error_and_log_nothing(comfy: ComfyServer, kind: str) -> None:
    async with connect(kind, comfy.url) as client:
        start = len(comfy.log_text().splitlines())
        for i in range(REPEATS):
            with pytest.raises(MCPError) as caught:
                await client.get_prompt(f"no_such_prompt_{i}", {})
            assert caught.value.error.code == -32602
            assert f"Unknown prompt 'no_such_prompt_{i}'" in caught.value.error.message
        assert (await client.call_tool("get_server_info", {})).is_error is False  # the log is written by now
    written = new_lines(comfy, start)
    assert not [line for line in written if "Traceback" in line or "prompt" in line], written


async def in_flight(server: ComfyServer) -> int:
    snapshot = await anyio.to_thread.run_sync(server.get_json, "/mcp-bridge/sessions")
    assert isinstance(snapshot, dict)
    return int(snapshot["counts"]["calls_in_flight"])


@pytest.mark.parametrize("kind", WAYS)
async def test_clients_leaving_mid_call_write_no_traceback(comfy: ComfyServer, kind: str) -> None:
    start = len(comfy.log_text().splitlines())

    async def call_and_leave() -> None:
        async with connect(kind, comfy.url) as client:
            await client.call_tool("debug_sleep", {"seconds": 2})

    for _ in range(REPEATS):
        with anyio.fail_after(30):
            while await in_flight(comfy):  # the previous call ended (2025-era calls run to their end)
                await anyio.sleep(0.05)
        async with anyio.create_task_group() as tg:
            tg.start_soon(call_and_leave)
            with anyio.fail_after(30):
                while not await in_flight(comfy):  # the call is being served
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
    async with connect(kind, comfy.url) as client:  # still serving; the log is written by now
        assert (await client.call_tool("get_server_info", {})).is_error is False
    written = new_lines(comfy, start)
    assert not [line for line in written if "Traceback" in line or "ERROR" in line], written
    assert sum("client left" in line for line in written) <= 1
