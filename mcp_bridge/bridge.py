"""Wire the bridge into ComfyUI's web server: routes, hooks and lifecycle."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from . import adapter
from .version import __version__

log = logging.getLogger("comfyui_mcp_bridge")

_installed = False


def install(server: Any) -> None:
    """Register the bridge's routes on ComfyUI's ``PromptServer`` (once per process)."""
    global _installed
    if _installed:
        return
    routes: web.RouteTableDef = server.routes
    routes.get("/mcp-bridge/health")(health)
    _installed = True
    log.info("comfyui-mcp-bridge %s installed", __version__)


async def health(request: web.Request) -> web.Response:
    """GET /mcp-bridge/health: the bridge's version and the ComfyUI version it runs in."""
    return web.json_response(
        {"status": "ok", "bridge_version": __version__, "comfyui_version": adapter.comfyui_version()}
    )
