"""The MCP routes on ComfyUI's own server: Streamable HTTP and legacy HTTP+SSE, behind the gate.

Routes (ComfyUI also mounts each under ``/api``):

- ``POST|GET|DELETE /mcp`` — Streamable HTTP, served by the SDK's ``StreamableHTTPSessionManager``
  (2025-11-25 sessions with ``Mcp-Session-Id`` and 2026-07-28 stateless requests alike);
- ``GET /mcp/sse`` + ``POST /mcp/messages?session_id=…`` — legacy HTTP+SSE, served by the SDK's
  ``SseServerTransport``. The ``endpoint`` event names the messages URL under the same prefix as the
  stream (``/api/mcp/sse`` advertises ``/api/mcp/messages``);
- ``GET /mcp-bridge/sessions`` — the session registry's snapshot (JSON), behind the same gate.

Every request passes :class:`~.security.Policy` first; a POST body is then read once and must be strict
JSON, and an ``MCP-Protocol-Version`` header must name a supported version (:mod:`.wire`); refusals made
once the body is read carry the request's JSON-RPC id. The session
manager's ``run()`` is an anyio context whose task group must be entered and left in one task, so it
lives in a dedicated asyncio task, started by the first MCP request and stopped by
:meth:`McpTransport.shutdown` (registered on ``app.on_shutdown``), which also cancels the handler tasks
of open streams.

Streamable HTTP sessions are tracked from the outside, through the SDK's public ASGI entry point: a
session opens when a response names a new ``Mcp-Session-Id`` and ends with a ``DELETE`` or a 404.
The bridge ends sessions itself the way a client would, with a ``DELETE`` of its own: at
``max_sessions`` the least recently used idle session makes room for a new one, and the manager's
task sweeps away sessions idle for ``session_idle_timeout_s`` or silent since ``initialize`` for
``session_handshake_timeout_s``. A session with a request in flight (an open GET stream is one) is
never ended this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiohttp import web
from mcp.server.lowlevel.server import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import (
    CLIENT_INFO_META_KEY,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    ErrorData,
    JSONRPCError,
    RequestId,
)
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from ..config import Settings
from . import security, wire
from .asgi import (
    AsgiExchange,
    BodyTimeout,
    BodyTooLarge,
    Message,
    Receive,
    Scope,
    Send,
    call_internal,
    local_ip,
)
from .backlog import Backlog
from .sessions import SSE, STREAMABLE, SessionInfo, SessionRegistry

log = logging.getLogger("comfyui_mcp_bridge")

SCOPE_KEY = "comfyui_mcp_bridge.tag"
MCP_PATHS = ("/mcp", "/mcp/sse", "/mcp/messages", "/mcp-bridge/sessions")
_SSE_SESSION_RE = re.compile(rb"session_id=([0-9a-f]{32})")
_SHUTDOWN_GRACE_S = 5.0
_SWEEP_BOUNDS_S = (0.5, 30.0)


#: Called with a POST's parsed body (None for other methods) once it is read; returns a refusal, or None
#: to serve the request.
Admit = Callable[[Any], Awaitable[web.StreamResponse | None]]


class ServerOptionsLike(Protocol):
    """How ComfyUI was started (``adapter.ServerOptions`` fits)."""

    @property
    def listen(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls(self) -> bool: ...
    @property
    def cors_origin(self) -> str | None: ...
    @property
    def user_directory(self) -> str: ...


class RequestTag:
    """Per-HTTP-request facts shared between our handler and the SDK middleware (via the scope)."""

    def __init__(self, registry: SessionRegistry, session_id: str | None, peer: str | None) -> None:
        self.registry = registry
        self.session_id = session_id
        self.peer = peer
        self._pending: tuple[object, object, object] | None = None

    def identify(self, name: object, version: object, protocol: object) -> None:
        """Record the client's self-description; held until the session id is known."""
        if self.session_id is not None:
            self.registry.identify(self.session_id, name, version, protocol)
        else:
            self._pending = (name, version, protocol)

    def bind(self, session_id: str, host: str | None) -> None:
        """The response named a new Streamable HTTP session: register it with what was learnt so far."""
        self.session_id = session_id
        self.registry.open(session_id, STREAMABLE, peer=self.peer, host=host)
        if self._pending is not None:
            self.registry.identify(session_id, *self._pending)
            self._pending = None


def _json_error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    code: int = INVALID_REQUEST,
    data: object = None,
    request_id: RequestId | None = None,
) -> web.Response:
    """An HTTP-level refusal as a JSON-RPC error; ``request_id`` is the refused request's id when its body
    was read (``id: null`` only when it could not be)."""
    error = ErrorData(code=code, message=message, data=data)
    body = JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
    return web.Response(
        status=status,
        text=body.model_dump_json(by_alias=True, exclude_unset=True),
        content_type="application/json",
        headers=headers,
    )


class McpTransport:
    """Serves the MCP routes for one low-level MCP server; see the module docstring."""

    def __init__(
        self,
        server: Server[Any],
        policy: security.Policy,
        settings: Settings,
        *,
        unavailable: str | None = None,
    ) -> None:
        self.policy = policy
        self.settings = settings
        self.unavailable = unavailable
        self.registry = SessionRegistry(stateless_ttl_s=settings.session_idle_timeout_s)
        self.server = server
        self.sse = SseServerTransport(
            "/mcp/messages",
            security_settings=policy.sdk_settings(),
            max_request_body_size=settings.max_body_bytes,
        )
        self._manager: StreamableHTTPSessionManager | None = None
        self._manager_task: asyncio.Task[None] | None = None
        self._manager_ready: asyncio.Future[None] | None = None
        self._manager_stop: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._opening = 0  # new-session requests being served
        self._reading: dict[AsgiExchange, None] = {}  # bodies being read, oldest first
        self._backlogs: dict[str, Backlog] = {}  # SSE session id -> requests not answered yet
        self._ending = 0  # sessions forgotten here whose DELETE is still on its way
        self._rate_log = security.RateLimitedLog()
        server.middleware.append(self._observe_message)

    # -- lifecycle --

    async def _ensure_manager(self) -> StreamableHTTPSessionManager | None:
        """Start the session manager task on first use; None once shutting down or if it cannot run."""
        if self._closing:
            return None
        if self._manager_task is None or self._manager_task.done():
            loop = asyncio.get_running_loop()
            self._manager = StreamableHTTPSessionManager(
                app=self.server,
                security_settings=self.policy.sdk_settings(),
                session_idle_timeout=self.settings.session_idle_timeout_s,
                max_request_body_size=self.settings.max_body_bytes,
                max_sessions=self.settings.max_sessions,
            )
            self._manager_ready = loop.create_future()
            self._manager_stop = asyncio.Event()
            self._manager_task = loop.create_task(
                self._run_manager(self._manager, self._manager_ready, self._manager_stop),
                name="comfyui-mcp-bridge:session-manager",
            )
        assert self._manager_ready is not None
        try:
            await asyncio.shield(self._manager_ready)
        except Exception:  # noqa: BLE001 - reported by _run_manager
            return None
        return self._manager

    async def _run_manager(
        self, manager: StreamableHTTPSessionManager, ready: asyncio.Future[None], stop: asyncio.Event
    ) -> None:
        """Own the manager's anyio task group for its whole life, in this one task; sweep meanwhile."""
        try:
            async with manager.run():
                self.registry.manager_state = "running"
                ready.set_result(None)
                await self._sweep_until(stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("comfyui-mcp-bridge: the MCP session manager stopped with an error")
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self.registry.manager_state = "stopped"
            if not ready.done():
                ready.set_exception(RuntimeError("session manager stopped"))
            # Consume the exception if nobody awaited it, to avoid "never retrieved" warnings.
            if ready.done() and not ready.cancelled():
                ready.exception()
            for info in self.registry.all():  # the manager's end took every session with it
                if info.transport == STREAMABLE:
                    self.registry.close(info.id)

    async def _sweep_until(self, stop: asyncio.Event) -> None:
        """End overdue sessions every little while until ``stop`` is set."""
        low, high = _SWEEP_BOUNDS_S
        timeouts = (self.settings.session_idle_timeout_s, self.settings.session_handshake_timeout_s)
        interval = min(high, max(low, min(timeouts) / 4))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                overdue = self.registry.overdue(*timeouts)
                for info in overdue:
                    await self._end_session(info)

    # -- ending sessions from here --

    async def _end_session(self, info: SessionInfo) -> None:
        """Forget a Streamable HTTP session now and have the SDK end it (a DELETE, as its client would)."""
        manager = self._manager
        self.registry.close(info.id)
        if manager is None:
            return
        headers = [(b"mcp-session-id", info.id.encode("ascii"))]
        if info.host is not None:
            headers.append((b"host", info.host.encode("latin-1")))
        self._ending += 1
        try:
            await call_internal(manager.handle_request, "DELETE", "/mcp", headers)
        except Exception:  # noqa: BLE001 - the session is forgotten either way
            log.debug("comfyui-mcp-bridge: ending session %s failed", info.id, exc_info=True)
        finally:
            self._ending -= 1

    async def _make_room(self) -> bool:
        """Before a new session opens at ``max_sessions``, end the least recently used idle one.

        False when every session has a request in flight (nothing may be ended)."""
        limit = self.settings.max_sessions
        while self.registry.count(STREAMABLE) + self._opening + self._ending >= limit:
            victim = self.registry.evictable(STREAMABLE)
            if victim is None:
                return False
            self._rate_log.warning(
                "session-evicted",
                "comfyui-mcp-bridge: ended the least recently used idle MCP session (client %s) to admit "
                "a new one: max_sessions (%d) were open",
                victim.client_name or "unknown",
                limit,
            )
            self.registry.rejected("session-evicted")
            await self._end_session(victim)
        return True

    async def shutdown(self, app: web.Application | None = None) -> None:
        """Stop serving: cancel open MCP handler tasks and stop the session manager (``on_shutdown``)."""
        self._closing = True
        handlers = [t for t in self._handlers if not t.done()]
        for handler in handlers:
            handler.cancel()
        manager_task = self._manager_task
        if manager_task is not None and not manager_task.done():
            assert self._manager_stop is not None
            self._manager_stop.set()
            done, _ = await asyncio.wait({manager_task}, timeout=_SHUTDOWN_GRACE_S)
            if not done:
                manager_task.cancel()
                await asyncio.wait({manager_task}, timeout=_SHUTDOWN_GRACE_S)
        if handlers:
            await asyncio.wait(handlers, timeout=_SHUTDOWN_GRACE_S)
        self.registry.manager_state = "stopped"

    async def close_sessions(self) -> int:
        """Disconnect every MCP client (the token changed): end open streams and in-flight requests,
        forget all sessions. Returns how many sessions were open. Used by the status panel."""
        current = asyncio.current_task()
        handlers = [t for t in self._handlers if not t.done() and t is not current]
        count = len(self.registry.snapshot()["sessions"])
        for handler in handlers:
            handler.cancel()
        for info in self.registry.all():
            if info.transport == STREAMABLE:
                await self._end_session(info)
            else:
                self.registry.close(info.id)
        if handlers:
            await asyncio.wait(handlers, timeout=_SHUTDOWN_GRACE_S)
        return count

    # -- the gate --

    def _refuse(
        self, request: web.Request, *, needs_token: bool = True, opens: bool = False
    ) -> web.Response | None:
        """Apply the security gate; return the error response, or None to proceed. A request that
        ``opens`` something (a stream, a message into a session) is refused (503) once closing."""
        if self.unavailable is not None:
            return _json_error(503, f"MCP is unavailable: {self.unavailable}", code=INTERNAL_ERROR)
        refused = self._gate(request, needs_token)
        if refused is None and opens and self._closing:
            return _json_error(503, "ComfyUI is shutting down", code=INTERNAL_ERROR)
        return refused

    def _gate(self, request: web.Request, needs_token: bool) -> web.Response | None:
        rejection = self.policy.check(
            request.method, request.headers, local_ip(request), needs_token=needs_token
        )
        if rejection is None:
            return None
        self.registry.rejected(rejection.reason)
        self._rate_log.warning(
            rejection.reason,
            "comfyui-mcp-bridge: refused %s %s from %s: %s (%d)",
            request.method,
            request.path,
            request.remote,
            rejection.reason,
            rejection.status,
        )
        headers = dict(rejection.headers)
        if rejection.reason not in ("host", "origin", "cross-site"):
            headers.update(self._cors(request))
        return _json_error(rejection.status, rejection.message, headers)

    def _cors_hook(self, request: web.Request) -> list[tuple[str, str]]:
        return list(self._cors(request).items())

    async def _serve(
        self,
        request: web.Request,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        tag: RequestTag,
        *,
        root_path: str = "",
        on_start: Callable[[int, list[tuple[bytes, bytes]]], Iterable[tuple[str, str]]] | None = None,
        admit: Admit | None = None,
    ) -> web.StreamResponse:
        """Run an SDK ASGI app for this request, tracking the handler task for shutdown.

        A POST body is read first, within ``request_body_timeout_s``; only then does the request count
        against ``max_open_requests`` and ``admit(body)`` (if given) may still refuse it.
        """
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        cors = self._cors_hook(request)

        def start_hook(status: int, headers: list[tuple[bytes, bytes]]) -> Iterable[tuple[str, str]]:
            extra = list(on_start(status, headers)) if on_start is not None else []
            return extra + cors

        exchange = AsgiExchange(
            request,
            root_path=root_path,
            max_body=self.settings.max_body_bytes,
            extra_scope={SCOPE_KEY: tag},
            on_response_start=start_hook,
            stall_timeout=self.settings.stream_stall_timeout_s,
        )
        try:
            message: Any = None
            if request.method == "POST":
                message, refused = await self._read_body(request, exchange)
                if refused is not None:
                    return refused
            refused = await admit(message) if admit is not None else None
            if refused is not None:
                return refused
            if self.registry.counters.get("open_requests", 0) >= self.settings.max_open_requests:
                self.registry.rejected("request-limit")
                return _json_error(
                    503,
                    f"Too many MCP requests at once (limit {self.settings.max_open_requests})",
                    code=INTERNAL_ERROR,
                    request_id=wire.request_id(message),
                )
            self.registry.add("open_requests")
            self.registry.add("requests_total")
            try:
                return await exchange.run(app)
            finally:
                self.registry.add("open_requests", -1)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _read_body(
        self, request: web.Request, exchange: AsgiExchange
    ) -> tuple[Any, web.StreamResponse | None]:
        """Read a POST body once, in time, and refuse it unless it is strict JSON (before the SDK sees it).

        Bodies being read hold a place of their own (``max_open_requests`` of them): when all are taken,
        the one reading longest gives its place up with a 408, so stalled uploads cannot starve others.
        """
        if len(self._reading) >= self.settings.max_open_requests:
            oldest = next(iter(self._reading))
            self._reading.pop(oldest)
            oldest.stop_reading()
        self._reading[exchange] = None
        self.registry.add("reading_requests")
        try:
            body = await exchange.read_body(self.settings.request_body_timeout_s)
        except BodyTooLarge:
            self.registry.rejected("body-size")
            limit = self.settings.max_body_bytes
            return None, _json_error(413, f"Request body larger than {limit} bytes", self._cors(request))
        except BodyTimeout:
            self.registry.rejected("body-timeout")
            self._rate_log.warning(
                "body-timeout",
                "comfyui-mcp-bridge: dropped a request from %s whose body did not arrive in time",
                request.remote,
            )
            timeout = self.settings.request_body_timeout_s
            text = f"Request body not received within {timeout:g} s (request_body_timeout_s)"
            refused = _json_error(408, text, self._cors(request))
            # Answer and hang up now: aiohttp would otherwise linger reading the rest of that body.
            refused.force_close()
            with contextlib.suppress(OSError):
                await refused.prepare(request)
                await refused.write_eof()
            if request.transport is not None:
                request.transport.close()
            return None, refused
        finally:
            self._reading.pop(exchange, None)
            self.registry.add("reading_requests", -1)
        if body is None:
            return None, web.Response(status=499)  # the client left; aiohttp discards this
        message, problem = wire.parse(body)
        if problem is None:
            return message, None
        self.registry.rejected("json")
        return None, _json_error(400, f"Parse error: {problem}", self._cors(request), code=PARSE_ERROR)

    def _cors(self, request: web.Request) -> dict[str, str]:
        return self.policy.cors_headers(request.headers, local_ip(request))

    # -- routes --

    async def handle_mcp(self, request: web.Request) -> web.StreamResponse:
        """POST|GET|DELETE /mcp: Streamable HTTP (2025-11-25 sessions and 2026-07-28), via the SDK."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        requested = request.headers.get("MCP-Protocol-Version")
        problem = wire.protocol_version_problem(requested)
        manager = await self._ensure_manager()
        if manager is None:
            return _json_error(503, "ComfyUI is shutting down", code=INTERNAL_ERROR)
        session_id = request.headers.get("Mcp-Session-Id")
        may_open = session_id is None and request.method == "POST" and _handshake_era(request)
        opening = False

        async def admit(message: Any) -> web.StreamResponse | None:
            nonlocal opening
            if problem is not None:  # refused once the body is read, so the answer carries its id
                self.registry.rejected("protocol-version")
                data = wire.unsupported_version_data(requested)
                return _json_error(
                    400,
                    problem,
                    self._cors(request),
                    code=UNSUPPORTED_PROTOCOL_VERSION,
                    data=data,
                    request_id=wire.request_id(message),
                )
            if not may_open or not wire.is_initialize(message):
                return None
            if not await self._make_room():
                self.registry.rejected("session-limit")
                return _json_error(
                    503,
                    f"Too many open MCP sessions (max_sessions {self.settings.max_sessions}), and every "
                    "one has a request in flight; retry later",
                    code=INTERNAL_ERROR,
                    request_id=wire.request_id(message),
                )
            opening = True
            self._opening += 1
            return None

        self.registry.touch(session_id)
        tag = RequestTag(self.registry, session_id, request.remote)
        standalone = request.method == "GET"
        counted = False

        def on_start(status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
            nonlocal counted
            if session_id is None and status < 400:
                new_id = next((v.decode("latin-1") for k, v in headers if k == b"mcp-session-id"), None)
                if new_id is not None:
                    tag.bind(new_id, request.headers.get("Host"))
            elif session_id is not None and (status == 404 or (request.method == "DELETE" and status < 300)):
                self.registry.close(session_id)  # unknown to the SDK (expired, ended) or ended now
            if standalone and status == 200:
                counted = True
                self.registry.add("standalone_streams")
            return []

        self.registry.begin(session_id)
        try:
            return await self._serve(request, manager.handle_request, tag, on_start=on_start, admit=admit)
        finally:
            self.registry.end(session_id)
            self._opening -= opening
            if counted:
                self.registry.add("standalone_streams", -1)

    async def handle_sse(self, request: web.Request) -> web.StreamResponse:
        """GET /mcp/sse: open a legacy HTTP+SSE session (the SDK's SseServerTransport)."""
        refused = self._refuse(request, opens=True)
        if refused is not None:
            return refused
        if self.registry.counters["sse_streams"] >= self.settings.max_sse_streams:
            self.registry.rejected("sse-limit")
            return _json_error(
                503, f"Too many open SSE streams (limit {self.settings.max_sse_streams})", code=INTERNAL_ERROR
            )
        root_path = request.path[: -len("/mcp/sse")] if request.path.endswith("/mcp/sse") else ""
        tag = RequestTag(self.registry, None, request.remote)
        self.registry.add("sse_streams")
        try:
            return await self._serve(request, self._sse_app(tag), tag, root_path=root_path)
        finally:
            self.registry.add("sse_streams", -1)
            if tag.session_id is not None:
                self._backlogs.pop(tag.session_id, None)
                self.registry.close(tag.session_id)

    def _sse_app(self, tag: RequestTag) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        backlog = Backlog(self.settings.max_session_requests)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            async def spy(message: Message) -> None:
                # The first body frame is the `endpoint` event naming the new session id.
                if tag.session_id is None and message["type"] == "http.response.body":
                    found = _SSE_SESSION_RE.search(bytes(message.get("body", b"")))
                    if found is not None:
                        tag.session_id = found.group(1).decode("ascii")
                        self.registry.open(tag.session_id, SSE, peer=tag.peer)
                        self._backlogs[tag.session_id] = backlog
                elif message["type"] == "http.response.body":
                    backlog.written(bytes(message.get("body", b"")))
                await send(message)

            try:
                async with self.sse.connect_sse(scope, receive, spy) as (read_stream, write_stream):
                    options = self.server.create_initialization_options()
                    await self.server.run(read_stream, write_stream, options)
            except ValueError:
                # connect_sse refused the request (its own Host/Origin check) and already answered.
                log.debug("comfyui-mcp-bridge: SSE connection refused by the SDK transport")

        return app

    async def handle_messages(self, request: web.Request) -> web.StreamResponse:
        """POST /mcp/messages?session_id=…: a client message for a legacy SSE session."""
        refused = self._refuse(request, opens=True)
        if refused is not None:
            return refused
        session_id = request.query.get("session_id")
        self.registry.touch(session_id)
        tag = RequestTag(self.registry, session_id, request.remote)
        backlog = self._backlogs.get(session_id or "")

        async def admit(message: Any) -> web.StreamResponse | None:
            if backlog is None or backlog.admit(wire.request_ids(message)):
                return None
            self.registry.rejected("session-backlog")
            self._rate_log.warning(
                "session-backlog",
                "comfyui-mcp-bridge: refused a request for SSE session %s…: %d replies unread",
                (session_id or "")[:8],
                backlog.size,
            )
            return _json_error(
                429,
                f"This SSE session already has {backlog.size} requests whose replies were not read from "
                f"its event stream (max_session_requests {backlog.limit}); read the stream before "
                "sending more",
                self._cors(request),
                code=INTERNAL_ERROR,
                request_id=wire.request_id(message),
            )

        return await self._serve(request, self.sse.handle_post_message, tag, admit=admit)

    async def handle_sessions(self, request: web.Request) -> web.Response:
        """GET /mcp-bridge/sessions: live MCP sessions and transport counters (JSON)."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        data = self.snapshot()
        return web.json_response(data, headers=self._cors(request))

    def snapshot(self) -> dict[str, Any]:
        """The registry's snapshot plus the gate's posture (JSON-safe)."""
        data = self.registry.snapshot()
        data["exposure"] = self.policy.exposure
        data["token_required"] = self.policy.token_required
        data["limits"] = {
            "max_sessions": self.settings.max_sessions,
            "max_sse_streams": self.settings.max_sse_streams,
            "max_body_bytes": self.settings.max_body_bytes,
            "max_open_requests": self.settings.max_open_requests,
            "session_idle_timeout_s": self.settings.session_idle_timeout_s,
            "session_handshake_timeout_s": self.settings.session_handshake_timeout_s,
        }
        data["unavailable"] = self.unavailable
        return data

    # -- SDK middleware: who is the client? --

    async def _observe_message(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        """Record client name/version (from ``initialize`` or the 2026 ``_meta`` envelope) and count
        the JSON-RPC requests being handled."""
        try:
            self._note_client(ctx)
        except Exception:  # noqa: BLE001 - observation must never break a request
            log.debug("comfyui-mcp-bridge: could not read client info", exc_info=True)
        if ctx.request_id is None:  # a notification
            return await call_next(ctx)
        self.registry.add("calls_in_flight")
        try:
            return await call_next(ctx)
        finally:
            self.registry.add("calls_in_flight", -1)

    def _note_client(self, ctx: Any) -> None:
        request = getattr(ctx, "request", None)
        scope = getattr(request, "scope", None)
        tag = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
        if not isinstance(tag, RequestTag):
            return
        params = ctx.params if isinstance(ctx.params, dict) else {}
        if ctx.method == "initialize":
            info = params.get("clientInfo")
            if isinstance(info, dict):
                tag.identify(info.get("name"), info.get("version"), params.get("protocolVersion"))
            return
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and ctx.request_id is not None:
            meta = ctx.meta if isinstance(ctx.meta, dict) else {}
            info = meta.get(CLIENT_INFO_META_KEY)
            if not isinstance(info, dict):
                info = {}
            name, version = info.get("name"), info.get("version")
            self.registry.seen_stateless(name, version, ctx.protocol_version, tag.peer)

    # -- CORS preflight --

    def preflight_middleware(self) -> Any:
        """aiohttp middleware answering ``OPTIONS`` on the MCP routes (installed only with CORS).

        It must run before ComfyUI's own CORS middleware, which answers every preflight itself with
        headers that omit ``Mcp-Session-Id`` and ``MCP-Protocol-Version``.
        """

        @web.middleware
        async def mcp_preflight(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.method == "OPTIONS" and is_mcp_path(request.path):
                status, headers = self.policy.preflight(request.headers, local_ip(request))
                if status != 204:
                    self.registry.rejected("preflight")
                return web.Response(status=status, headers=headers)
            response: web.StreamResponse = await handler(request)
            return response

        return mcp_preflight


def _handshake_era(request: web.Request) -> bool:
    """True when the SDK would serve this request on its stateful (session) path."""
    version = request.headers.get("MCP-Protocol-Version")
    return version is None or version in HANDSHAKE_PROTOCOL_VERSIONS


def is_mcp_path(path: str) -> bool:
    """True for the MCP routes, with or without ComfyUI's ``/api`` prefix."""
    if path.startswith("/api/"):
        path = path[4:]
    return path in MCP_PATHS


def create_transport(
    server: Server[Any],
    options: ServerOptionsLike,
    settings: Settings,
    *,
    config_error: str | None = None,
) -> McpTransport:
    """Build the gate (token included) and the transport for this ComfyUI."""
    unavailable = f"invalid settings: {config_error}" if config_error else None
    token: str | None = None
    token_problem: str
    try:
        token = security.load_or_create_token(options.user_directory)
    except (security.TokenError, OSError) as exc:
        log.error("comfyui-mcp-bridge: cannot load or create the MCP token: %s", exc)
        token_problem = str(exc)
    else:
        token_problem = ""
    try:
        policy = security.build_policy(
            listen=options.listen,
            port=options.port,
            tls=options.tls,
            cors_origin=options.cors_origin,
            token=token,
            require_token_on_loopback=settings.require_token_on_loopback,
            extra_allowed_hosts=settings.extra_allowed_hosts,
            extra_allowed_origins=settings.extra_allowed_origins,
            max_body_bytes=settings.max_body_bytes,
        )
    except ValueError as exc:
        unavailable = unavailable or f"invalid settings: {exc}"
        policy = security.build_policy(
            listen=options.listen,
            port=options.port,
            tls=options.tls,
            cors_origin=options.cors_origin,
            token=token,
            require_token_on_loopback=True,
        )
    if policy.token_required and token is None:
        unavailable = unavailable or f"the bearer token is required but unavailable ({token_problem})"
    if policy.token_required:
        log.warning(
            "comfyui-mcp-bridge: %s. Token file: %s",
            policy.exposure,
            security.token_path(options.user_directory),
        )
    else:
        log.info("comfyui-mcp-bridge: %s", policy.exposure)
    if unavailable:
        log.error("comfyui-mcp-bridge: MCP routes will answer 503: %s", unavailable)
    return McpTransport(server, policy, settings, unavailable=unavailable)


def add_routes(
    routes: web.RouteTableDef, app: web.Application | None, transport: McpTransport
) -> McpTransport:
    """Register the MCP routes on ``routes`` (ComfyUI adds the ``/api`` twins) and, with CORS, the
    preflight middleware on ``app`` (before ComfyUI's own middlewares). Call before the app starts."""
    routes.post("/mcp")(transport.handle_mcp)
    routes.get("/mcp")(transport.handle_mcp)
    routes.delete("/mcp")(transport.handle_mcp)
    routes.get("/mcp/sse")(transport.handle_sse)
    routes.post("/mcp/messages")(transport.handle_messages)
    routes.get("/mcp-bridge/sessions")(transport.handle_sessions)
    if app is not None and transport.policy.cors_enabled:
        app.middlewares.insert(0, transport.preflight_middleware())
    return transport
