"""The one MCP server object of the bridge, and its always-present tools.

:func:`create_mcp_server` builds the :class:`~mcp.server.mcpserver.MCPServer` that every transport
serves. Other modules register their tools onto the returned instance with ``@mcp.tool()`` (or
``mcp.add_tool``); tools raise :class:`ToolError` for failures the caller can act on, so the client
sees the message (any other exception reaches the client only as "Error executing tool …").
"""

from __future__ import annotations

import asyncio
import functools
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from ..comfyui import adapter
from ..config import Settings
from ..version import __version__

SERVER_NAME = "comfyui-mcp-bridge"

INSTRUCTIONS = """\
This server runs inside ComfyUI, the node-based image generation application, on this machine.
Use its tools to inspect ComfyUI and to generate or transform images with the models installed here.
Call get_server_info first to learn the ComfyUI version, the compute device and how busy the queue is.
Model, LoRA, sampler and scheduler names must be given exactly as the listing tools return them.
Generation can take from seconds to minutes: progress is reported while a call runs; if a call
returns a job id instead of a result, the job is still running and can be checked later.
"""

__all__ = ["INSTRUCTIONS", "SERVER_NAME", "ServerInfo", "ToolError", "create_mcp_server"]


class ServerInfo(BaseModel):
    """What get_server_info reports."""

    bridge_version: str = Field(description="Version of comfyui-mcp-bridge")
    comfyui_version: str | None = Field(description="Version of the ComfyUI this bridge runs in")
    device: str = Field(description="The torch device ComfyUI computes on, e.g. cpu or cuda:0")
    queue_length: int = Field(description="Prompts running or waiting in ComfyUI's queue")
    mcp_sdk_version: str = Field(description="Version of the MCP Python SDK serving this connection")


@functools.cache
def _sdk_version() -> str:
    try:
        return package_version("mcp")
    except PackageNotFoundError:
        return "unknown"


def create_mcp_server(settings: Settings | None = None) -> MCPServer:
    """Build the bridge's MCP server with its built-in tools; more tools can be added to it later."""
    settings = settings or Settings()
    mcp: MCPServer = MCPServer(
        name=SERVER_NAME,
        title="ComfyUI",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/comfyui-mcp-bridge/comfyui-mcp-bridge",
    )

    @mcp.tool(
        title="ComfyUI server info",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def get_server_info() -> ServerInfo:
        """Report the bridge and ComfyUI versions, the compute device, and how many prompts are queued."""
        return ServerInfo(
            bridge_version=__version__,
            comfyui_version=adapter.comfyui_version(),
            device=adapter.device_name(),
            queue_length=adapter.queue_length(),
            mcp_sdk_version=_sdk_version(),
        )

    if settings.debug_tools:

        @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
        async def debug_sleep(seconds: float = Field(ge=0, le=600, description="How long to wait")) -> str:
            """Diagnostics: wait, then answer "slept". Cancelled when the caller cancels or goes away."""
            await asyncio.sleep(seconds)
            return "slept"

        @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
        async def debug_fail(message: str = Field(max_length=200)) -> str:
            """Diagnostics: fail with the given message as a tool error."""
            raise ToolError(message)

    return mcp


def _drop_titles(schema: object) -> None:
    # Pydantic gives every property a "title" derived from its name: pure repetition for an AI reader.
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for prop in props.values():
                if isinstance(prop, dict):
                    prop.pop("title", None)
        schema.pop("title", None)
        for value in schema.values():
            _drop_titles(value)
    elif isinstance(schema, list):
        for item in schema:
            _drop_titles(item)


def compact_tool_schemas(mcp: MCPServer) -> None:
    """Trim the advertised schemas of every registered tool (``tools/list`` costs the AI's context)."""
    for tool in mcp._tool_manager.list_tools():  # noqa: SLF001 - schemas are only reachable here
        _drop_titles(tool.parameters)
        if tool.fn_metadata.output_schema is not None:
            _drop_titles(tool.fn_metadata.output_schema)
