"""Raw HTTP MCP clients for tests and benchmarks: what `curl` or a careless client sends, no SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import aiohttp

PROTOCOL = "2025-11-25"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def message(method: str, params: dict[str, Any] | None = None, id: int | None = 1) -> dict[str, Any]:
    """A JSON-RPC request (or a notification with ``id=None``)."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        body["id"] = id
    if params is not None:
        body["params"] = params
    return body


INITIALIZE = message(
    "initialize",
    {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw-client", "version": "0"}},
)


def session_headers(session_id: str) -> dict[str, str]:
    """Headers of a request on an open Streamable HTTP session."""
    return {**HEADERS, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": PROTOCOL}


async def initialize_only(http: aiohttp.ClientSession, url: str) -> str:
    """Open a session the way one `curl` call does: an initialize and nothing after it; its id."""
    async with http.post(url + "/mcp", data=json.dumps(INITIALIZE), headers=HEADERS) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise AssertionError(f"initialize answered {resp.status}: {text}")
        return resp.headers["Mcp-Session-Id"]


async def open_session(http: aiohttp.ClientSession, url: str) -> str:
    """Initialize and confirm (``notifications/initialized``) a session; its id."""
    session_id = await initialize_only(http, url)
    await post(http, url, session_id, message("notifications/initialized", id=None))
    return session_id


async def post(http: aiohttp.ClientSession, url: str, session_id: str, body: dict[str, Any]) -> int:
    """POST one message on a session and read the whole answer; the HTTP status."""
    async with http.post(url + "/mcp", data=json.dumps(body), headers=session_headers(session_id)) as resp:
        await resp.read()
        return resp.status


async def ping(http: aiohttp.ClientSession, url: str, session_id: str) -> int:
    """The HTTP status of a ping on a session (404 once the session is gone)."""
    return await post(http, url, session_id, message("ping", id=7))


async def slow_body(host: str, port: int, path: str = "/mcp", interval: float = 1.0) -> int:
    """POST a body one byte every ``interval`` seconds until the server answers; its HTTP status.

    0 when the server closed the connection without an answer.
    """
    reader, writer = await asyncio.open_connection(host, port)
    body = json.dumps(message("ping")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode())

    async def trickle() -> None:
        for byte in body:
            await asyncio.sleep(interval)
            writer.write(bytes([byte]))
            await writer.drain()

    trickling = asyncio.ensure_future(trickle())
    try:
        status_line = await reader.readline()
    finally:
        trickling.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await trickling
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    parts = status_line.split()
    return int(parts[1]) if len(parts) >= 2 else 0


class NonReadingSse:
    """A legacy SSE client that opens its stream, learns its messages URL, and then never reads again."""

    def __init__(self, host: str, port: int, prefix: str = "") -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.messages_path = ""
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> NonReadingSse:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: stalls sooner
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
        reader, self._writer = await asyncio.open_connection(sock=sock)
        self._writer.write(
            f"GET {self.prefix}/mcp/sse HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise AssertionError(f"SSE stream refused: {head!r}")
        while not self.messages_path:
            line = (await reader.readline()).decode().strip()
            if line.startswith("data: ") and "session_id=" in line:
                self.messages_path = line[len("data: ") :]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def post(self, http: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, str]:
        """POST one message for this session; the status and the answer's text."""
        url = f"http://{self.host}:{self.port}{self.messages_path}"
        async with http.post(url, data=json.dumps(body), headers=HEADERS) as resp:
            return resp.status, await resp.text()
