"""The status panel's backend: a snapshot route, token/settings/cancel routes, and live pushes.

Routes (ComfyUI also mounts each under ``/api``):

- ``GET /mcp-bridge/status`` — everything the panel shows, as one JSON snapshot;
- ``POST /mcp-bridge/token/reveal`` and ``POST /mcp-bridge/token/regenerate`` — the bearer token;
- ``POST /mcp-bridge/output-folders`` — add or remove an allowed output folder;
- ``POST /mcp-bridge/tool-profile`` — which tools ``tools/list`` shows (full, core, compact);
- ``POST /mcp-bridge/jobs/cancel`` — cancel one of the bridge's jobs.

Every route checks that the request comes from ComfyUI's own page: the Host names this machine
(DNS rebinding), an ``Origin`` (when sent) equals the Host, ``Sec-Fetch-Site: cross-site`` is refused.
POST routes take ``application/json`` only (a cross-site form cannot send it without a CORS preflight).
The token routes are off while ComfyUI runs with ``--enable-cors-header``, and when ComfyUI listens
beyond loopback they answer only a browser on the ComfyUI machine itself (loopback peer, same-origin,
no proxy headers): anyone else on the network must not be able to read the token.

Changes are pushed to every open ComfyUI tab through the port (``ComfyBackend.push_to_pages``, ComfyUI's
``send_sync("mcp_bridge.<type>", …)``):
``job`` (one job's snapshot), ``sessions`` (the session list), ``settings`` (output folders) and
``token`` (the token changed; never the token itself). Payloads are serialized here first (a payload
ComfyUI cannot serialize would end its message loop) and coalesced per subject, so a fast progress
stream sends at most one message per subject every :data:`PUSH_INTERVAL_S`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from .. import config
from ..addresses import is_loopback_ip, listens_beyond_loopback
from ..comfyui.backend import ServerOptions
from ..delivery import paths
from ..engine.jobs import Job
from ..http import security
from ..http.asgi import local_ip
from ..http.sessions import SessionRegistry
from ..mcp.profiles import PROFILES
from ..tools.published import Published
from ..tools.services import Services
from ..version import __version__
from .common import MAX_BODY_BYTES, NO_STORE, Refused, job_view
from .common import error_response as _error
from .publish import PublishRoutes
from .push import PUSH_INTERVAL_S, Send
from .push import Pusher as Pusher  # the panel tests use it through this module

log = logging.getLogger("comfyui_mcp_bridge")

RECENT_JOBS = 12
ENDPOINTS = (
    {"id": "streamable-http", "label": "Streamable HTTP", "path": "/mcp"},
    {"id": "sse", "label": "Legacy HTTP+SSE", "path": "/mcp/sse"},
)
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")


class TransportLike(Protocol):
    """What the panel needs from the MCP transport (``transport.McpTransport`` fits)."""

    policy: security.Policy
    registry: SessionRegistry
    unavailable: str | None

    async def close_sessions(self) -> int: ...


# -- request checks -----------------------------------------------------------------------------------


same_origin = security.same_origin  # the gate's own Origin rules (scheme://host[:port], nothing more)


# -- output folders ---------------------------------------------------------------------------------


def check_output_folder(text: object) -> str:
    """Validate a folder a person wants to allow for outputs; return its absolute form.

    It must be an absolute path to an existing folder, and not a filesystem root, a home folder or
    an ancestor of one (the same rules the tools apply to their roots). Raises :class:`Refused`.
    """
    if not isinstance(text, str):
        raise Refused(400, "Folder refused: the folder must be given as a string")
    folder = text.rstrip("/\\")
    if text.strip() and not folder:
        raise Refused(400, "Folder refused: a filesystem root is never an allowed folder")
    try:
        absolute, _names = paths.check_path_text(folder, None)
    except paths.PathRejected as exc:
        raise Refused(400, f"Folder refused: {exc.reason}") from None
    if not absolute:
        raise Refused(400, "Folder refused: give the full path of the folder (starting with /)")
    given = os.path.abspath(folder)
    policy = paths.PathPolicy([given])
    if policy.ignored:
        raise Refused(400, f"Folder refused: {policy.ignored[0][1]}")
    return given


def _same_folder(a: str, b: str) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


# -- the panel ---------------------------------------------------------------------------------------


class Panel:
    """The panel's routes and pushes for one running bridge."""

    def __init__(
        self,
        services: Services,
        transport: TransportLike | None,
        options: ServerOptions,
        send: Send,
        loop: asyncio.AbstractEventLoop,
        *,
        push_interval: float = PUSH_INTERVAL_S,
        published: Published | None = None,
    ) -> None:
        self.services = services
        self.published = published
        self.transport = transport
        self.options = options
        self.pusher = Pusher(send, loop, push_interval)
        self.publish = PublishRoutes(services, published, self.pusher, self._check_request, self._json_body)
        self._loop = loop
        self._changed_jobs: dict[str, Job] = {}  # changed since the last flush, in order
        self._policy = transport.policy if transport is not None else self._fallback_policy(options, services)
        self._settings_lock = asyncio.Lock()
        self._token_lock = threading.Lock()
        self._pushed_states: dict[str, str] = {}
        self._unobserve: list[Callable[[], None]] = []

    @staticmethod
    def _fallback_policy(options: ServerOptions, services: Services) -> security.Policy:
        # Without a transport only the Host/Origin rules matter (there is no MCP token in use).
        settings = services.settings
        common: dict[str, Any] = {
            "listen": options.listen,
            "port": options.port,
            "tls": options.tls,
            "cors_origin": options.cors_origin,
            "token": None,
            "require_token_on_loopback": settings.require_token_on_loopback,
        }
        try:
            return security.build_policy(**common, extra_allowed_hosts=settings.extra_allowed_hosts)
        except ValueError:  # a malformed extra host name: the built-in names still apply
            return security.build_policy(**common)

    # -- wiring --

    def add_routes(self, routes: web.RouteTableDef) -> None:
        """Register the panel routes (ComfyUI adds the ``/api`` twins)."""
        routes.get("/mcp-bridge/status")(self.status)
        routes.post("/mcp-bridge/token/reveal")(self.reveal_token)
        routes.post("/mcp-bridge/token/regenerate")(self.regenerate_token)
        routes.post("/mcp-bridge/output-folders")(self.output_folders)
        routes.post("/mcp-bridge/tool-profile")(self.tool_profile)
        routes.post("/mcp-bridge/jobs/cancel")(self.cancel_job)
        self.publish.add_routes(routes)

    def observe(self) -> None:
        """Start pushing job and session changes to the browser."""
        self._unobserve.append(self.services.registry.observe(self._job_changed))
        if self.transport is not None:
            self._unobserve.append(self.transport.registry.add_observer(self._sessions_changed))

    def close(self) -> None:
        """Stop observing and drop pending pushes."""
        for undo in self._unobserve:
            undo()
        self._unobserve.clear()
        self._changed_jobs.clear()
        self.pusher.close()

    def _job_changed(self, job: Job) -> None:
        # Registry observer, on the hot path of every job event: note the job, push on the next turn
        # of the loop, after the wake-ups of the callers waiting for it (one push per job and turn).
        if not self._changed_jobs:
            self._loop.call_soon(self._flush_jobs)
        self._changed_jobs[job.id] = job

    def _flush_jobs(self) -> None:
        changed, self._changed_jobs = self._changed_jobs, {}
        for job in changed.values():
            self._push_job(job)

    def _push_job(self, job: Job) -> None:
        if self.services.registry.get(job.id) is not job:  # discarded: ComfyUI refused its prompt
            self._pushed_states.pop(job.id, None)
            self.pusher.push("job:" + job.id, "job", lambda: self._removed_event(job.id), urgent=True)
            return
        state = job.state.value
        urgent = self._pushed_states.get(job.id) != state
        if job.state.finished:
            self._pushed_states.pop(job.id, None)
        else:
            self._pushed_states[job.id] = state
        self.pusher.push("job:" + job.id, "job", lambda: self._job_event(job), urgent=urgent)

    def _job_event(self, job: Job) -> dict[str, Any]:
        return {
            "job": job_view(job),
            "active": len(self.services.registry.active()),
            "server_time": time.time(),
        }

    def _removed_event(self, job_id: str) -> dict[str, Any]:
        return {"removed": job_id, "active": len(self.services.registry.active()), "server_time": time.time()}

    def _sessions_changed(self, event: str, _payload: dict[str, Any]) -> None:
        self.pusher.push("sessions", "sessions", self._sessions_event, urgent=event in ("opened", "closed"))

    def _sessions_event(self) -> dict[str, Any]:
        return {"sessions": self._sessions(), "server_time": time.time()}

    def _sessions(self) -> list[dict[str, Any]]:
        if self.transport is None:
            return []
        sessions: list[dict[str, Any]] = self.transport.registry.snapshot()["sessions"]
        return sessions

    # -- checks --

    def _check_request(self, request: web.Request) -> None:
        """Host names this machine; Origin (if any) equals the Host; not cross-site."""
        host = request.headers.get("Host")
        if not self._policy.host_allowed(host, local_ip(request)):
            raise Refused(421, "This host name is not allowed for the MCP bridge panel")
        origin = request.headers.get("Origin")
        if origin is not None and (host is None or not same_origin(origin, host)):
            raise Refused(403, "The MCP bridge panel answers only ComfyUI's own page (Origin differs)")
        if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
            raise Refused(403, "Cross-site requests are not allowed")

    async def _json_body(self, request: web.Request, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
        """The POST body: ``application/json``, small, a JSON object."""
        self._check_request(request)
        ctype = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise Refused(415, "Send the request as Content-Type: application/json")
        length = request.content_length
        if length is None or length > max_bytes:
            raise Refused(413, f"The request body must have a Content-Length of at most {max_bytes} bytes")
        try:  # all of it: read(n) returns what has arrived so far
            raw = await asyncio.wait_for(
                request.content.readexactly(length), self.services.settings.request_body_timeout_s
            )
        except (asyncio.IncompleteReadError, asyncio.TimeoutError):
            raise Refused(400, "The request body ended before its Content-Length, or took too long") from None
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise Refused(400, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "The request body must be a JSON object")
        return body

    def token_refusal(self, request: web.Request, *, require_origin: bool = True) -> str | None:
        """Why the token routes are closed for this request, or None when they are open.

        ``require_origin`` False judges a GET (browsers send no Origin on same-origin GETs) by what
        the page's own POST will look like.
        """
        where = f"read it from the file {security.TOKEN_FILE} in ComfyUI's user folder"
        if self.transport is None or self._policy.token is None:
            return "the MCP transport is not running, so there is no token"
        if self.options.cors_origin is not None:
            return f"ComfyUI runs with --enable-cors-header, so other web sites could read the token; {where}"
        if any(h in request.headers for h in _FORWARDING_HEADERS):
            return f"this page is reached through a proxy; {where}"
        if listens_beyond_loopback(self.options.listen):
            has_origin = request.headers.get("Origin") is not None or not require_origin
            if not (is_loopback_ip(request.remote) and has_origin):
                return (
                    "ComfyUI is reachable from the network, so the token is shown only in a browser on the "
                    f"ComfyUI machine itself; {where}"
                )
        return None

    # -- routes --

    async def status(self, request: web.Request) -> web.Response:
        """GET /mcp-bridge/status: versions, endpoints, token posture, sessions, jobs, output folders."""
        try:
            self._check_request(request)
        except Refused as exc:
            return _error(exc)
        data = self.snapshot(request)
        peers = self.services.peers
        data["instance"] = {"id": peers.own_id, "peers": await peers.status()}  # several behind one URL
        return web.json_response(data, headers=NO_STORE)

    def snapshot(self, request: web.Request) -> dict[str, Any]:
        """The panel's whole state for this request (JSON-safe; never contains the token)."""
        registry = self.services.registry
        active = registry.active()
        finished = [job for job in registry.all() if job.state.finished]
        finished.sort(key=lambda job: job.finished or 0.0, reverse=True)
        transport = self.transport
        refusal = self.token_refusal(request, require_origin=False)
        settings = self.services.settings
        return {
            "up": True,
            "bridge_version": __version__,
            "comfyui_version": self.services.comfy.comfyui_version(),
            "server_time": time.time(),
            "mcp": {
                "available": transport is not None and transport.unavailable is None,
                "problem": (
                    transport.unavailable if transport is not None else "the MCP transport is not installed"
                ),
                "endpoints": [dict(e) for e in ENDPOINTS] if transport is not None else [],
                "exposure": self._policy.exposure,
            },
            "token": {
                "required": self._policy.token_required,
                "available": refusal is None,
                "refusal": refusal,
                "file": security.TOKEN_FILE,
            },
            "sessions": self._sessions(),
            "jobs": {
                "active": [job_view(job) for job in active],
                "recent": [job_view(job) for job in finished[:RECENT_JOBS]],
            },
            "output_folders": {
                "comfyui_output": self.services.comfy.output_directory(),
                "extra": list(settings.output_roots),
                "editable": config.env_name("output_roots") not in os.environ,
                "env_var": config.env_name("output_roots"),
            },
            "tool_profile": {
                "value": settings.tool_profile,
                "choices": list(PROFILES),
                "editable": config.env_name("tool_profile") not in os.environ,
                "env_var": config.env_name("tool_profile"),
            },
        }

    async def reveal_token(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/token/reveal ``{}``: the bearer token (same-origin, never with CORS)."""
        try:
            await self._json_body(request)
            self._check_token_route(request)
        except Refused as exc:
            return _error(exc)
        return web.json_response(
            {"token": self._policy.token, "required": self._policy.token_required}, headers=NO_STORE
        )

    async def regenerate_token(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/token/regenerate ``{}``: a new token; sessions that used the old one close."""
        try:
            await self._json_body(request)
            self._check_token_route(request)
        except Refused as exc:
            return _error(exc)
        assert self.transport is not None
        try:
            token = await asyncio.to_thread(self._rotate_token_file)
        except OSError as exc:
            log.error("comfyui-mcp-bridge: cannot write a new token: %s", exc)
            return _error(Refused(500, "The new token could not be stored (see ComfyUI's log)"))
        was_required = self._policy.token_required
        self._policy.token = token  # from now on only the new token opens the MCP routes
        disconnected = await self.transport.close_sessions() if was_required else 0
        rotation = secrets.token_hex(8)  # lets the tab that asked tell its own change from others'
        self.pusher.push("token", "token", lambda: {"rotation": rotation}, urgent=True)
        return web.json_response(
            {"token": token, "required": was_required, "disconnected": disconnected, "rotation": rotation},
            headers=NO_STORE,
        )

    def _rotate_token_file(self) -> str:
        with self._token_lock:
            return security.regenerate_token(self.options.user_directory)

    def _check_token_route(self, request: web.Request) -> None:
        refusal = self.token_refusal(request)
        if refusal is not None:
            raise Refused(403, "The token cannot be shown here: " + refusal)

    async def output_folders(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/output-folders ``{"add"|"remove": "/abs/folder"}``: edit the allowed folders.

        The change is saved in the settings file and applies to the next tool call.
        """
        try:
            body = await self._json_body(request)
            actions = [key for key in ("add", "remove") if key in body]
            if len(actions) != 1 or set(body) - {"add", "remove"}:
                raise Refused(400, 'Send {"add": "<folder>"} or {"remove": "<folder>"}')
            env_var = config.env_name("output_roots")
            if env_var in os.environ:
                raise Refused(409, f"The output folders are set by the environment variable {env_var}")
            async with self._settings_lock:
                folders = await self._change_folders(actions[0], body[actions[0]])
        except Refused as exc:
            return _error(exc)
        self.pusher.push("settings", "settings", lambda: {"output_folders": list(folders)}, urgent=True)
        return web.json_response({"output_folders": folders})

    async def _change_folders(self, action: str, text: object) -> list[str]:
        current = list(self.services.settings.output_roots)
        if action == "add":
            folder = await asyncio.to_thread(check_output_folder, text)
            if await asyncio.to_thread(lambda: any(_same_folder(folder, f) for f in current)):
                return current
            new = [*current, folder]
        else:
            if not isinstance(text, str) or text not in current:
                raise Refused(404, "That folder is not in the list of allowed output folders")
            new = [f for f in current if f != text]
        try:
            await asyncio.to_thread(config.update_file, self.options.user_directory, {"output_roots": new})
        except (OSError, config.ConfigError) as exc:
            log.error("comfyui-mcp-bridge: cannot save the settings: %s", exc)
            raise Refused(500, "The settings file could not be written (see ComfyUI's log)") from None
        # The tools read the settings at call time: the next call sees the new list.
        self.services.settings.output_roots = new
        return new

    async def tool_profile(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/tool-profile ``{"profile": "full"|"core"|"compact"}``: which tools
        ``tools/list`` shows. Saved in the settings file; clients are told the list changed."""
        try:
            body = await self._json_body(request)
            profile = body.get("profile")
            if set(body) != {"profile"} or profile not in PROFILES:
                raise Refused(400, f'Send {{"profile": ...}}, one of {", ".join(PROFILES)}')
            env_var = config.env_name("tool_profile")
            if env_var in os.environ:
                raise Refused(409, f"The tool profile is set by the environment variable {env_var}")
            async with self._settings_lock:
                try:
                    await asyncio.to_thread(
                        config.update_file, self.options.user_directory, {"tool_profile": profile}
                    )
                except (OSError, config.ConfigError) as exc:
                    log.error("comfyui-mcp-bridge: cannot save the settings: %s", exc)
                    raise Refused(500, "The settings file could not be written (see ComfyUI's log)") from None
                self.services.settings.tool_profile = profile
        except Refused as exc:
            return _error(exc)
        told = 0
        if self.published is not None and self.published.on_change is not None:
            told = await self.published.on_change()  # tools/list_changed to every session
        self.pusher.push("settings", "settings", lambda: {"tool_profile": profile}, urgent=True)
        return web.json_response({"tool_profile": profile, "sessions_told": told})

    async def cancel_job(self, request: web.Request) -> web.Response:
        """POST /mcp-bridge/jobs/cancel ``{"job_id": "…"}``: cancel one of the bridge's jobs."""
        try:
            body = await self._json_body(request)
            job_id = body.get("job_id")
            job = self.services.registry.get(job_id) if isinstance(job_id, str) else None
            if job is None:
                raise Refused(404, "No such MCP job (it may have finished long ago)")
        except Refused as exc:
            return _error(exc)
        outcome = self.services.runner.cancel(job)
        log.info("comfyui-mcp-bridge: job %s cancelled from the panel (%s)", job.id, outcome)
        return web.json_response({"outcome": outcome, "job": job_view(job)})


def install(
    server: Any, services: Services, transport: TransportLike | None, published: Published | None = None
) -> Panel:
    """Register the panel's routes on ComfyUI's server and start pushing changes to its pages."""

    options = services.comfy.server_options()
    panel = Panel(
        services, transport, options, services.comfy.push_to_pages, server.loop, published=published
    )
    panel.add_routes(server.routes)
    panel.observe()
    return panel
