"""The panel's publish routes: list, publish, edit and unpublish the workflows served as tools."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..specs.publishing import PublishRefused
from ..tools.published import Published
from ..tools.services import Services
from .common import MAX_BODY_BYTES, NO_STORE, Refused, job_view
from .common import error_response as _error
from .push import Pusher

log = logging.getLogger("comfyui_mcp_bridge")

MAX_PUBLISH_BYTES = 4 * 1024 * 1024  # a workflow in API format plus the selection
LAST_RUNS = 5


class PublishRoutes:
    """The published-workflow routes, behind the panel's own request checks."""

    def __init__(
        self,
        services: Services,
        published: Published | None,
        pusher: Pusher,
        check_request: Callable[[web.Request], None],
        json_body: Callable[[web.Request, int], Awaitable[dict[str, Any]]],
    ) -> None:
        self.services = services
        self.published = published
        self.pusher = pusher
        self._check_request = check_request
        self._json_body = json_body

    def add_routes(self, routes: web.RouteTableDef) -> None:
        """Register the publish routes (ComfyUI adds the ``/api`` twins)."""
        routes.get("/mcp-bridge/workflows")(self.workflows)
        routes.post("/mcp-bridge/workflows/publish")(self.publish_workflow)
        routes.post("/mcp-bridge/workflows/edit")(self.edit_workflow)
        routes.post("/mcp-bridge/workflows/unpublish")(self.unpublish_workflow)

    def _store(self) -> Published:
        if self.published is None:
            raise Refused(503, "Publishing workflows is not available (the MCP server is not installed)")
        return self.published

    async def workflows(self, request: web.Request) -> web.Response:
        """GET /mcp-bridge/workflows: the published tools, whether each can run, and its last runs."""
        try:
            self._check_request(request)
            store = self._store()
        except Refused as exc:
            return _error(exc)
        return web.json_response({"workflows": await self._views(store)}, headers=NO_STORE)

    async def _views(self, store: Published) -> list[dict[str, Any]]:
        jobs = sorted(self.services.registry.all(), key=lambda job: job.created, reverse=True)
        views = []
        for entry in list(store.entries.values()):
            view = await store.view(entry)
            view["last_runs"] = [job_view(job) for job in jobs if job.tool == entry.name][:LAST_RUNS]
            view["selection"] = entry.meta.get("selection")  # the form's default when it is replaced
            views.append(view)
        return views

    async def publish_workflow(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/workflows/publish ``{prompt, selection, name, description, workflow, id?}``:
        validate the workflow with ComfyUI's own checks and serve it as a tool from now on."""
        return await self._change(request, "publish", MAX_PUBLISH_BYTES)

    async def edit_workflow(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/workflows/edit ``{id, name?, description?}``: rename or redescribe a tool."""
        return await self._change(request, "edit")

    async def unpublish_workflow(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/workflows/unpublish ``{id}``: stop serving a published tool."""
        return await self._change(request, "unpublish")

    async def _change(
        self, request: web.Request, action: str, max_bytes: int = MAX_BODY_BYTES
    ) -> web.Response:
        try:
            body = await self._json_body(request, max_bytes)
            store = self._store()
            if action == "publish":
                entry = await store.publish(body)
            elif action == "edit":
                entry = await store.edit(body.get("id"), body.get("name"), body.get("description"))
            else:
                entry = await store.unpublish(body.get("id"))
        except Refused as exc:
            return _error(exc)
        except PublishRefused as exc:
            return _error(Refused(400, str(exc)))
        log.info("comfyui-mcp-bridge: workflow tool %s %sed from the panel", entry.name, action.rstrip("e"))
        self.pusher.push("workflows", "workflows", lambda: {"changed": entry.id}, urgent=True)
        view = await store.view(entry) if action != "unpublish" else {"id": entry.id, "name": entry.name}
        return web.json_response({"workflow": view}, headers=NO_STORE)
