"""The one MCP server object of the bridge, and its always-present tools.

:func:`create_mcp_server` builds the :class:`~mcp.server.mcpserver.MCPServer` that every transport
serves, from a :class:`~mcp_bridge.tools.toolset.Toolset` the other modules filled; tools raise
:class:`ToolError` for failures the caller can act on, so the client sees the message (any other
exception reaches the client only as "Error executing tool …").
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Collection, Iterable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any
from urllib.parse import urlsplit

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, GetPromptResult, InputRequiredResult, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import AnyUrl, BaseModel, Field

from ..comfyui.artifacts import mime_for
from ..comfyui.backend import ComfyBackend
from ..config import Settings
from ..engine.ids import OUTPUT_SCHEME
from ..engine.peers import Peers, forwarded_by
from ..version import __version__
from . import profiles
from .apps import bind_result_view
from .live_tools import LiveTools, announce_list_changes
from .paging import page_tools
from .routers import add_routers
from .toolset import Toolset

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
    instance_id: str | None = Field(None, description="This instance's id (the prefix of its job ids)")
    peers: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Other instances behind the same URL: id, url, answers (bool), queue_length, latency_ms",
    )


@functools.cache
def _sdk_version() -> str:
    try:
        return package_version("mcp")
    except PackageNotFoundError:
        return "unknown"


class BridgeMCPServer(MCPServer):
    """The SDK's server, with ``comfy://output/...`` reads typed by each file's own MIME type.

    A resource template declares one MIME type for every URI it matches; the output folder holds
    PNG, WebP, GIF, MP4, WebM, … files, so the type is set per read here, from the file's extension.
    """

    live: LiveTools
    built_in: frozenset[str]  # the names of the tools it was built with (published names differ)
    bridge_settings: Settings  # read at each listing: the panel changes tool_profile live

    async def list_tools(self) -> list[MCPTool]:
        """The tools the ``tool_profile`` setting shows (:mod:`.profiles`), long argument groups said once."""
        return profiles.listing(await self.all_tools(), self.bridge_settings.tool_profile)

    async def all_tools(self) -> list[MCPTool]:
        """The tools built in, then those published while running (:mod:`.live_tools`)."""
        tools = await super().list_tools()
        built_in = {tool.name for tool in tools}
        for info in list(self.live.tools.values()):
            if info.name not in built_in:
                tools.append(
                    MCPTool(
                        name=info.name,
                        title=info.title,
                        description=info.description,
                        input_schema=info.parameters,
                        annotations=info.annotations,
                    )
                )
        return tools

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        live = None if name in self.built_in else self.live.tools.get(name)  # built-in names always win
        if live is None:
            return await super().call_tool(name, arguments, context)
        context = context or Context(mcp_server=self)
        result: CallToolResult = await live.run(arguments, context, convert_result=True)
        return result

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        results = await super().read_resource(uri, context)
        if isinstance(results, InputRequiredResult) or not str(uri).startswith(OUTPUT_SCHEME):
            return results
        mime = mime_for(urlsplit(str(uri)).path)
        return [dataclasses.replace(item, mime_type=mime) for item in results]

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        """An unknown name is the caller's error (-32602, naming the prompts there are), not a crash:
        the SDK would answer "Internal server error" and log a traceback for each such request."""
        known = sorted(prompt.name for prompt in await self.list_prompts())
        if name not in known:
            there = f"the prompts are: {', '.join(known)}" if known else "this server has no prompts"
            raise MCPError(INVALID_PARAMS, f"Unknown prompt {name[:100]!r}; {there}")
        return await super().get_prompt(name, arguments, context)


def create_mcp_server(
    settings: Settings | None = None,
    toolset: Toolset | None = None,
    comfy: ComfyBackend | None = None,
    view_tools: Collection[str] = (),
    peers: Peers | None = None,
) -> BridgeMCPServer:
    """Build the bridge's MCP server: its own tools first, then those of ``toolset``.

    ``comfy`` answers get_server_info (without one, as outside ComfyUI: no version, no queue). The tools
    named in ``view_tools`` carry the result view (MCP Apps, :mod:`.apps`).
    """
    settings = settings or Settings()
    own = server_tools(settings, comfy, peers)
    tools = [*own.tools, *(toolset.tools if toolset else [])]
    view = bind_result_view(tools, view_tools)
    live = LiveTools()
    mcp = BridgeMCPServer(
        name=SERVER_NAME,
        title="ComfyUI",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/comfyui-mcp-bridge/comfyui-mcp-bridge",
        tools=tools,
        extensions=[view] if view else None,
        subscriptions=live.bus,
    )
    mcp.live = live
    mcp.bridge_settings = settings
    mcp.built_in = frozenset(tool.name for tool in tools)
    mcp.middleware.append(live.observe)
    announce_list_changes(lowlevel_server(mcp))
    page_tools(lowlevel_server(mcp), mcp.list_tools)
    return mcp


def server_tools(
    settings: Settings, comfy: ComfyBackend | None = None, peers: Peers | None = None
) -> Toolset:
    """get_server_info, the routers of the core and compact profiles, and the diagnostic tools when
    ``debug_tools`` is on."""
    mcp = Toolset()

    @mcp.tool(
        title="ComfyUI server info",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def get_server_info(ctx: Context | None = None) -> ServerInfo:
        """Bridge and ComfyUI versions, device, queue length; with peers, whether each answers."""
        asked_by_peer = forwarded_by(ctx.headers if ctx is not None else None)
        return ServerInfo(
            instance_id=peers.own_id if peers else None,
            peers=await peers.status() if peers and not asked_by_peer else [],
            bridge_version=__version__,
            comfyui_version=comfy.comfyui_version() if comfy else None,
            device=comfy.device_name() if comfy else "unknown",
            queue_length=comfy.queue_length() if comfy else 0,
            mcp_sdk_version=_sdk_version(),
        )

    add_routers(mcp)
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


def lowlevel_server(mcp: MCPServer) -> Server[Any]:
    """The low-level :class:`Server` behind ``mcp``, which the SDK's transports run.

    MCPServer keeps it private; its public ``streamable_http_app()`` builds a session manager whose
    public ``app`` is that server (the Starlette app and that manager are not used: each run of ours
    makes its own manager).
    """
    mcp.streamable_http_app()
    return mcp.session_manager.app
