"""MCP inside a real ComfyUI: every way in, with our SDK clients and with clients nobody here wrote."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from _mcp_clients import JS_DIR, WAYS, connect, node_modules
from mcp import Client, StdioServerParameters

from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("prefix", ["", "/api"], ids=["plain", "api"])
@pytest.mark.parametrize("kind", WAYS)
async def test_sdk_clients_initialize_list_and_call(comfy: ComfyServer, kind: str, prefix: str) -> None:
    async with connect(kind, comfy.url + prefix) as client:
        assert client.protocol_version == ("2026-07-28" if kind == "streamable-2026" else "2025-11-25")
        assert client.server_info is not None and client.server_info.name == "comfyui-mcp-bridge"
        assert client.instructions and "ComfyUI" in client.instructions
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "get_server_info" in tools
        assert tools["get_server_info"].description
        result = await client.call_tool("get_server_info", {})
        assert not result.is_error
        info = result.structured_content
        assert info is not None
        assert info["comfyui_version"] == comfy.version
        assert info["device"] == "cpu"
        assert info["queue_length"] == 0
        assert info["bridge_version"] == client.server_info.version


@pytest.mark.parametrize("kind", ["streamable", "sse"])
def test_the_typescript_sdk_connects(comfy: ComfyServer, kind: str) -> None:
    modules = node_modules()
    assert (modules / "@modelcontextprotocol" / "sdk").is_dir()
    url = comfy.url + ("/mcp/sse" if kind == "sse" else "/mcp")
    proc = subprocess.run(
        ["node", str(JS_DIR / "ts_client.mjs"), url, kind], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["serverName"] == "comfyui-mcp-bridge"
    assert "get_server_info" in out["tools"]
    assert out["result"]["comfyui_version"] == comfy.version and not out["isError"]


@pytest.mark.parametrize("transport", ["http-only", "sse-only"])
async def test_mcp_remote_bridges_stdio_to_the_endpoint(
    comfy: ComfyServer, transport: str, tmp_path: Path
) -> None:
    """mcp-remote is what Claude Desktop users put in their config; drive it through stdin/stdout."""
    modules = node_modules()
    url = comfy.url + ("/mcp/sse" if transport == "sse-only" else "/mcp")
    params = StdioServerParameters(
        command="node",
        args=[str(modules / "mcp-remote" / "dist" / "proxy.js"), url, "--transport", transport],
        env={**os.environ, "MCP_REMOTE_CONFIG_DIR": str(tmp_path)},
        cwd=str(JS_DIR),
    )
    async with Client(params, mode="legacy") as client:
        assert client.server_info is not None and client.server_info.name == "comfyui-mcp-bridge"
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "get_server_info" in names
        result = await client.call_tool("get_server_info", {})
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["comfyui_version"] == comfy.version
