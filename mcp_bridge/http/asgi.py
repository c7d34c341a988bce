"""Serve one aiohttp request with an ASGI 3.0 application (the MCP SDK's transports).

ComfyUI runs aiohttp, the MCP SDK ships its HTTP transports as ASGI applications; this module joins
the two without uvicorn or Starlette routing:

- the **scope** is built from the aiohttp request (lower-cased raw headers, client and server
  addresses, ``root_path`` for prefixed mounts);
- ``receive()`` **streams the body** chunk by chunk (with an optional size cap), then blocks until the
  client disconnects and returns ``http.disconnect``; ``read_body()`` reads it whole beforehand, with
  a deadline (and can be stopped early), and ``receive()`` then hands over that copy;
- **disconnects** are detected by polling the connection's transport: aiohttp does not cancel
  handlers when a client goes away (ComfyUI's runner leaves ``handler_cancellation`` off), and a GET
  has no body stream to carry the error. A failed write counts as a disconnect too;
- ``send()`` maps ``http.response.start``/``http.response.body`` onto a ``web.StreamResponse``: the
  headers go out with the first body message (``Content-Length`` when the body is a single message,
  chunked otherwise), and every write goes through aiohttp's flow control (backpressure). A write that
  waits longer than ``stall_timeout`` for the client to read aborts the connection. After a
  disconnect ``send()`` is a silent no-op, as under uvicorn.

Every response is prepared here, so middlewares that edit headers after the handler returns (ComfyUI's
CORS middleware) cannot alter what was sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from aiohttp import web

from .security import RateLimitedLog

log = logging.getLogger("comfyui_mcp_bridge")
_GONE_LOG = RateLimitedLog()  # one line a minute however many clients vanish
_STALL_LOG = RateLimitedLog()

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Called with the status and headers of ``http.response.start``; returns headers to add.
StartHook = Callable[[int, list[tuple[bytes, bytes]]], Iterable[tuple[str, str]]]

DISCONNECT_POLL_S = 0.25
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"})


class _Response(web.StreamResponse):
    """A streamed response whose headers leave with its first body bytes: one socket write (and one
    hand-over of the GIL to ComfyUI's busy worker thread) fewer per answer. aiohttp >= 3.12 buffers
    headers when this class attribute is false, as its own ``web.Response`` does; older ones ignore it
    and send them at ``prepare`` as before."""

    _send_headers_immediately = False


class BodyTooLarge(Exception):
    """The request body grew past the exchange's cap while streaming."""


class BodyTimeout(Exception):
    """The request body did not arrive in time (or its reading was stopped to make room)."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class AsgiExchange:
    """One aiohttp request handed to an ASGI application; see the module docstring."""

    def __init__(
        self,
        request: web.Request,
        *,
        root_path: str = "",
        max_body: int | None = None,
        extra_scope: dict[str, Any] | None = None,
        on_response_start: StartHook | None = None,
        poll_interval: float = DISCONNECT_POLL_S,
        stall_timeout: float | None = None,
    ) -> None:
        self.request = request
        self.stall_timeout = stall_timeout
        self.max_body = max_body
        self.poll_interval = poll_interval
        self.on_response_start = on_response_start
        self.scope: Scope = build_scope(request, root_path=root_path)
        if extra_scope:
            self.scope.update(extra_scope)
        self.status: int | None = None
        self.response: web.StreamResponse | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._started = False
        self._complete = False
        self._finished = False
        self._gone = False
        self._body_done = False
        self._body_bytes = 0
        self._preread: bytes | None = None
        self._reader: asyncio.Task[bytes | None] | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    # -- state --

    @property
    def disconnected(self) -> bool:
        """True once the client is known to be gone (closed transport or failed write)."""
        if not self._gone and self._transport_closed():
            self._mark_gone()
        return self._gone

    def _transport_closed(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    def _mark_gone(self) -> None:
        self._gone = True
        self._wake_all()

    def _wake_all(self) -> None:
        for waiter in list(self._waiters):
            _wake(waiter)

    # -- ASGI callables --

    async def read_body(self, timeout: float | None = None) -> bytes | None:
        """Read the whole body now (None if the client left; :class:`BodyTooLarge` past the cap;
        :class:`BodyTimeout` when it took longer than ``timeout`` or :meth:`stop_reading` was called).

        ``receive()`` then hands the app that body in one message, so it is read only once.
        """
        reader = self._reader = asyncio.ensure_future(self._read_all())
        try:
            done, _ = await asyncio.wait({reader}, timeout=timeout)
        finally:
            self._reader = None
            if not reader.done():
                reader.cancel()
        if not done or reader.cancelled():
            raise BodyTimeout()
        return reader.result()

    def stop_reading(self) -> None:
        """Give up reading the body: :meth:`read_body` raises :class:`BodyTimeout` at once."""
        if self._reader is not None:
            self._reader.cancel()

    async def _read_all(self) -> bytes | None:
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                return None
            chunks.append(message["body"])
            if not message["more_body"]:
                self._preread = b"".join(chunks)
                return self._preread

    async def receive(self) -> Message:
        """ASGI ``receive``: body chunks first, then ``http.disconnect`` once the client is gone."""
        if self._preread is not None:
            body, self._preread = self._preread, None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self._body_done and not self._finished and not self.disconnected:
            try:
                chunk = await self.request.content.readany()
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self._mark_gone()
                return {"type": "http.disconnect"}
            except Exception:  # noqa: BLE001 - aiohttp payload errors have no common public base
                self._mark_gone()
                return {"type": "http.disconnect"}
            more = bool(chunk)
            if not more:
                self._body_done = True
            self._body_bytes += len(chunk)
            if self.max_body is not None and self._body_bytes > self.max_body:
                self._body_done = True
                raise BodyTooLarge(self._body_bytes)
            return {"type": "http.request", "body": bytes(chunk), "more_body": more}
        await self._wait_disconnected()
        return {"type": "http.disconnect"}

    async def _wait_disconnected(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._finished and not self.disconnected:
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            handle = loop.call_later(self.poll_interval, _wake, waiter)
            try:
                await waiter
            finally:
                handle.cancel()
                self._waiters.discard(waiter)

    async def send(self, message: Message) -> None:
        """ASGI ``send``: response start, then body messages written with backpressure."""
        kind = message["type"]
        if kind == "http.response.start":
            if self._started:
                raise RuntimeError("http.response.start sent twice")
            self._started = True
            self.status = int(message["status"])
            headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
            if self.on_response_start is not None:
                extra = self.on_response_start(self.status, headers)
                headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra)
            self._headers = headers
            return
        if kind != "http.response.body":
            return  # e.g. http.response.trailers / pathsend: not used by the SDK
        if not self._started:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self._complete or self.disconnected:
            return
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        watchdog = self._watch_stall()
        try:
            first = self.response is None
            if self.response is None:
                self.response = await self._prepare(body_length=None if more else len(body))
            if body or (first and more):  # an empty first chunk of a stream sends the headers alone
                await self.response.write(body)
            if not more:
                self._complete = True
                await self.response.write_eof()
        except OSError:  # ConnectionResetError & co: the client went away mid-write
            self._mark_gone()
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _watch_stall(self) -> asyncio.TimerHandle | None:
        """Close the connection if the write about to start makes no progress for ``stall_timeout``."""
        if self.stall_timeout is None:
            return None
        return asyncio.get_running_loop().call_later(self.stall_timeout, self._stalled)

    def _stalled(self) -> None:
        transport = self.request.transport
        _STALL_LOG.warning(
            "stall",
            "comfyui-mcp-bridge: closed a connection from %s that read nothing for %g s (%s %s)",
            self.request.remote,
            self.stall_timeout,
            self.request.method,
            self.request.path,
        )
        if transport is not None:
            transport.abort()
        self._mark_gone()

    async def _prepare(self, body_length: int | None) -> web.StreamResponse:
        assert self.status is not None
        response = _Response(status=self.status)
        for key, value in self._headers:
            if key in _HOP_BY_HOP or (key == b"content-length" and body_length is None):
                continue
            response.headers.add(key.decode("latin-1"), value.decode("latin-1"))
        if body_length is not None:
            response.content_length = body_length
        await response.prepare(self.request)
        return response

    # -- running an app --

    async def run(self, app: ASGIApp) -> web.StreamResponse:
        """Run ``app`` for this request and return the (already prepared) aiohttp response."""
        try:
            await app(self.scope, self.receive, self.send)
        except BodyTooLarge:
            if not self._started:
                await self._simple(413, b"Request body too large")
        except Exception as exc:
            if self.disconnected:  # the app tripped over the vanished client: not a failure of ours
                _GONE_LOG.log(
                    logging.INFO,
                    "client-gone",
                    "comfyui-mcp-bridge: MCP client left during %s %s (%s)",
                    self.request.method,
                    self.request.path,
                    type(exc).__name__,
                )
            else:
                log.exception(
                    "MCP transport failed while serving %s %s", self.request.method, self.request.path
                )
            if not self._started:
                await self._simple(500, b"Internal server error")
        finally:
            self._finished = True
            self._wake_all()
        if not self._started:
            await self._simple(500, b"No response")
        elif self.response is None and not self.disconnected:
            try:
                self.response = await self._prepare(body_length=0)
                await self.response.write_eof()
            except OSError:
                self._mark_gone()
        elif self.response is not None and not self._complete and not self.disconnected:
            try:
                await self.response.write_eof()  # the app stopped mid-stream: end the body cleanly
            except OSError:
                self._mark_gone()
        if self.response is None:
            # The client left before anything was sent; aiohttp discards this.
            return web.Response(status=499 if self.disconnected else 500)
        return self.response

    async def _simple(self, status: int, body: bytes) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await self.send({"type": "http.response.body", "body": body})


def build_scope(request: web.Request, *, root_path: str = "") -> Scope:
    """The ASGI HTTP scope for an aiohttp request."""
    transport = request.transport
    client = _address(transport.get_extra_info("peername") if transport else None)
    server = _address(transport.get_extra_info("sockname") if transport else None)
    raw_path = request.raw_path.split("?", 1)[0]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": request.rel_url.raw_query_string.encode("latin-1", "replace"),
        "root_path": root_path,
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": client,
        "server": server,
        "state": {},
        "extensions": {},
    }


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def local_ip(request: web.Request) -> str | None:
    """The server-side IP address the request's connection arrived on."""
    transport = request.transport
    address = _address(transport.get_extra_info("sockname") if transport else None)
    return address[0] if address else None


async def call_internal(
    app: ASGIApp, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> int | None:
    """Run ``app`` for a bodiless request the bridge makes itself (no connection); return the status."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": None,
        "server": None,
        "state": {},
        "extensions": {},
    }
    status: int | None = None
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if body_sent:
            return {"type": "http.disconnect"}
        body_sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def call_asgi(app: ASGIApp, request: web.Request, **options: Any) -> web.StreamResponse:
    """Serve ``request`` with ``app``; ``options`` as for :class:`AsgiExchange`."""
    return await AsgiExchange(request, **options).run(app)
