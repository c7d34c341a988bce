"""Wire the bridge into ComfyUI's web server: routes, hooks and lifecycle."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from mcp.server.mcpserver import MCPServer

from . import config
from .comfyui import adapter
from .comfyui.backend import ComfyBackend
from .delivery.housekeeping import tidy
from .delivery.previews import EarlyPreviews
from .engine import ids
from .engine.jobs import JobRegistry
from .engine.peers import Peers, parse_peers
from .engine.runner import JobRunner
from .http import transport
from .mcp import server as mcp_server
from .mcp.apps import view_tool_names
from .mcp.toolset import Toolset
from .panel import routes as panel
from .specs.library import ParamModels, SpecLibrary, load_specs, make_models
from .specs.params import Defaults, Limits
from .tools import catalog as tools_catalog
from .tools import debug as tools_debug
from .tools import jobs as tools_jobs
from .tools import saving as tools_saving
from .tools.batch import add_batch_tool
from .tools.edit import KINDS as EDIT_KINDS
from .tools.edit import TOOL as EDIT_TOOL
from .tools.edit import add_edit_tool, edit_catalog
from .tools.errors import as_tool_error
from .tools.pipeline import add_spec_tool
from .tools.published import Published, folder_for
from .tools.published import register as register_published
from .tools.services import Services
from .tools.templates import TemplateCatalog
from .tools.templates import register as register_templates
from .tools.video import KINDS as VIDEO_KINDS
from .tools.video import TOOL as VIDEO_TOOL
from .tools.video import add_video_tool, load_video_catalog
from .tools.video import compiler as video_compiler
from .version import __version__

log = logging.getLogger("comfyui_mcp_bridge")

# The bridge's state on ComfyUI's aiohttp application (typed keys; no module globals).
SERVICES = web.AppKey("mcp_bridge.services", Services)
BACKGROUND = web.AppKey("mcp_bridge.background", set)  # strong references to background tasks


def build_services(server: Any) -> Services:
    """Create the job engine on ComfyUI's server and hook it into ComfyUI's events (in dependency
    order: the port, the registry reading its queue, the runner, then the hooks feeding both)."""
    options = adapter.server_options()
    settings, settings_error = config.load_or_report(options.user_directory)
    comfy = adapter.Comfy(server)
    registry = JobRegistry(queue_view=comfy.queue_view)
    instance_id = ids.instance_id(settings.instance_id, options.port)
    runner = JobRunner(comfy, registry, instance_id=instance_id)
    comfy.install_hooks(on_event=registry.on_event, on_done=runner.on_done)
    specs = load_tool_specs(settings, comfy)
    return Services(
        peers=load_peers(settings, instance_id),
        comfy=comfy,
        registry=registry,
        runner=runner,
        settings=settings,
        specs=specs,
        param_models=param_models(settings, specs, comfy),
        settings_error=settings_error,
        previews=EarlyPreviews(comfy).attach(registry),
    )


def load_peers(settings: config.Settings, instance_id: str) -> Peers:
    """The ``peers`` setting (a malformed one is logged and leaves this instance without peers)."""
    try:
        found = parse_peers(instance_id, settings.peers, settings.peer_tokens)
    except ValueError as exc:
        log.error("comfyui-mcp-bridge: peers ignored: %s", exc)
        found = {}
    if found:
        log.info("comfyui-mcp-bridge: instance %s, peers: %s", instance_id, ", ".join(sorted(found)))
    return Peers(instance_id, found, settings.peer_timeout_s)


def load_tool_specs(settings: config.Settings, comfy: ComfyBackend) -> SpecLibrary:
    """The shipped specs and those of the ``tool_folders`` setting, for the node classes ComfyUI has."""
    extra = [Path(folder) for folder in settings.tool_folders]
    return load_specs(
        extra_folders=extra,
        node_classes=comfy.node_class_names(),
        is_output_node=comfy.is_output_node,
        node_inputs=comfy.node_inputs,
    )


def param_models(settings: config.Settings, specs: SpecLibrary, comfy: ComfyBackend) -> ParamModels:
    """The tools' arguments models with the configured limits and defaults (built-in ones if those clash)."""
    try:
        limits = Limits(
            max_side=settings.max_side,
            max_pixels=settings.max_pixels,
            max_frames=settings.max_video_frames,
            max_video_pixels=settings.max_video_pixels,
            max_input_image_bytes=settings.max_input_bytes,
        )
        defaults = Defaults(
            width=settings.default_width,
            height=settings.default_height,
            steps=settings.default_steps,
            cfg_scale=settings.default_cfg_scale,
            sampler=settings.default_sampler,
            scheduler=settings.default_scheduler,
        )
        return make_models(limits, defaults, specs, comfy.node_inputs)
    except ValueError as exc:
        log.error("comfyui-mcp-bridge: generation limits/defaults ignored: %s", exc)
        return make_models(specs=specs, node_inputs=comfy.node_inputs)


def install(server: Any) -> None:
    """Register the bridge's routes on ComfyUI's ``PromptServer`` (once per process)."""
    app: web.Application = server.app
    if SERVICES in app:
        return
    services = build_services(server)
    app[SERVICES] = services
    app[BACKGROUND] = set()
    server.routes.get("/mcp-bridge/health")(health)
    published = Published(services, folder_for(services.comfy.server_options().user_directory))
    published.load()
    mcp_transport = install_mcp(server, services, published)
    panel.install(server, services, mcp_transport, published)
    server.loop.call_soon_threadsafe(start_housekeeping, services, app[BACKGROUND])
    log.info("comfyui-mcp-bridge %s installed", __version__)


HOUSEKEEPING_INTERVAL_S = 3600.0


def start_housekeeping(services: Services, keep: set[asyncio.Task[None]]) -> None:
    """Sweep leftovers now and hourly, off the loop (see :mod:`.delivery.housekeeping`); the task is
    kept in ``keep`` (the loop holds only weak references)."""

    async def rounds() -> None:
        while True:
            roots = [services.comfy.output_directory(), *services.settings.output_roots]
            input_dir = services.comfy.input_directory()
            await asyncio.to_thread(tidy, roots, input_dir, services.settings.staged_input_max_age_s)
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)

    keep.add(asyncio.get_running_loop().create_task(rounds()))


def install_mcp(
    server: Any, services: Services, published: Published | None = None
) -> transport.McpTransport:
    """Create the MCP server and serve it on ComfyUI's port (routes, CORS preflight, shutdown hook)."""
    options = services.comfy.server_options()
    settings = services.settings
    mcp = build_mcp(services, published)
    mcp_transport = transport.create_transport(
        mcp_server.lowlevel_server(mcp), options, settings, config_error=services.settings_error
    )
    transport.add_routes(server.routes, server.app, mcp_transport)
    live = getattr(mcp, "live", None)
    if live is not None:
        mcp_transport.registry.add_observer(
            lambda event, info: live.forget(str(info.get("id"))) if event == "closed" else None
        )
    server.app.on_shutdown.append(mcp_transport.shutdown)
    return mcp_transport


def build_mcp(services: Services, published: Published | None = None) -> MCPServer:
    """The MCP server of the bridge: every tool (published workflows live), and the output resources."""
    outputs = [(name, spec.output_kinds) for name, spec in services.specs.specs.items()]
    tools = build_tools(services, published)
    outputs += [(tool.name, VIDEO_KINDS) for tool in tools.tools if tool.name == VIDEO_TOOL]
    outputs += [(tool.name, EDIT_KINDS) for tool in tools.tools if tool.name == EDIT_TOOL]
    mcp = mcp_server.create_mcp_server(
        services.settings, tools, services.comfy, view_tools=view_tool_names(outputs), peers=services.peers
    )
    tools_catalog.register_resources(mcp, services)
    if published is not None:
        published.reserved = mcp.built_in
        published.attach(mcp.live.put, mcp.live.remove)
        published.on_change = mcp.live.changed
    return mcp


def build_tools(services: Services, published: Published | None = None) -> Toolset:
    """Every tool the bridge serves, in the order ``tools/list`` shows them."""
    toolset = Toolset(errors=as_tool_error)
    videos = load_video_catalog(services.comfy.node_class_names(), video_compiler(services))
    tools_catalog.register(toolset, services, videos)
    for name, spec in services.specs.specs.items():
        add_spec_tool(toolset, services, spec, services.param_models[name])
    add_video_tool(toolset, services, videos)
    add_edit_tool(toolset, services, edit_catalog(services))
    add_batch_tool(toolset, services)
    tools_jobs.register(toolset, services)
    tools_saving.register(toolset, services)
    if published is not None:
        register_published(toolset, published)
    register_templates(toolset, services, TemplateCatalog(services.comfy))
    if services.settings.debug_tools:
        tools_debug.register(toolset, services)
    return toolset


async def health(request: web.Request) -> web.Response:
    """GET /mcp-bridge/health: the bridge's version, the ComfyUI version it runs in, this instance's
    id and its queue length (peers and load balancers probe it)."""
    data: dict[str, Any] = {
        "status": "ok",
        "bridge_version": __version__,
        "comfyui_version": adapter.comfyui_version(),
    }
    services = request.app.get(SERVICES)
    if services is not None:
        data.update(instance_id=services.runner.instance_id, queue_length=services.comfy.queue_length())
    return web.json_response(data)
