"""Wire the bridge into ComfyUI's web server: routes, hooks and lifecycle."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from . import adapter, config
from .jobs import JobRegistry
from .runner import JobRunner
from .services import Services
from .version import __version__

log = logging.getLogger("comfyui_mcp_bridge")

_services: Services | None = None


def build_services(server: Any) -> Services:
    """Create the job engine on ComfyUI's server and hook it into ComfyUI's events."""
    options = adapter.server_options()
    settings, _error = config.load_or_report(options.user_directory)

    def queue_view() -> tuple[list[str], list[str]]:
        view = comfy.queue_view()
        return view.running, view.pending

    def on_done(prompt_id: str, entry: dict[str, Any] | None) -> None:
        runner.on_done(prompt_id, entry)

    registry = JobRegistry(queue_view=queue_view)
    comfy = adapter.Comfy(server, on_event=registry.on_event, on_done=on_done)
    runner = JobRunner(comfy, registry)
    comfy.install_hooks()
    return Services(comfy=comfy, registry=registry, runner=runner, settings=settings)


def install(server: Any) -> None:
    """Register the bridge's routes on ComfyUI's ``PromptServer`` (once per process)."""
    global _services
    if _services is not None:
        return
    _services = build_services(server)
    routes: web.RouteTableDef = server.routes
    routes.get("/mcp-bridge/health")(health)
    log.info("comfyui-mcp-bridge %s installed", __version__)


async def health(request: web.Request) -> web.Response:
    """GET /mcp-bridge/health: the bridge's version and the ComfyUI version it runs in."""
    return web.json_response(
        {"status": "ok", "bridge_version": __version__, "comfyui_version": adapter.comfyui_version()}
    )
