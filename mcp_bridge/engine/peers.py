"""The other bridge instances behind the same URL, and calls forwarded to them over MCP.

A job id or output link names its instance (:mod:`.engine.ids`). When a call about one lands on
another instance (a balancer spread the requests), it is forwarded to the owner's MCP endpoint with
the ``mcp`` SDK's client, progress relayed. Only peers in the ``peers`` setting are ever contacted,
each at its configured URL, with its own token from ``peer_tokens``; redirects are not followed (a
token never goes to any other host). A forwarded request is marked and is never forwarded again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.types import BlobResourceContents, CallToolResult, TextResourceContents

from .ids import valid_instance_id

log = logging.getLogger("comfyui_mcp_bridge")

FORWARDED_HEADER = "x-mcp-bridge-forwarded"  # value: the id of the instance that forwarded
PROTOCOL = "2026-07-28"  # peers are bridges: stateless calls, no handshake round trip
HEALTH_PATH = "/mcp-bridge/health"

Progress = ProgressFnT


class PeerError(Exception):
    """A forwarded call could not be made or answered; the message names the peer."""


@dataclass(frozen=True)
class Peer:
    """Another instance: its id, the URL of its MCP endpoint, the token it wants (if any)."""

    id: str
    url: str
    token: str | None = None

    def headers(self, forwarded_by: str) -> dict[str, str]:
        headers = {FORWARDED_HEADER: forwarded_by}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def health_url(self) -> str:
        """The peer's health route, on the same host and port as its MCP endpoint."""
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, HEALTH_PATH, "", ""))


def parse_peers(own_id: str, entries: list[str], tokens: list[str]) -> dict[str, Peer]:
    """The ``peers`` setting (``id=URL``) with the ``peer_tokens`` (``id=token``), this instance left
    out. Raises ValueError naming a malformed entry (never a token's value)."""
    secrets: dict[str, str] = {}
    for entry in tokens:
        peer_id, sep, token = entry.partition("=")
        if not sep or not valid_instance_id(peer_id.strip()) or not token.strip():
            raise ValueError("peer_tokens: an entry is not id=token")
        secrets[peer_id.strip()] = token.strip()
    peers: dict[str, Peer] = {}
    for entry in entries:
        peer_id, sep, url = (part.strip() for part in entry.partition("="))
        parts = urlsplit(url)
        if (
            not sep
            or not valid_instance_id(peer_id)
            or parts.scheme not in ("http", "https")
            or not parts.hostname
        ):
            raise ValueError(f"peers: {entry[:120]!r} is not id=http(s)://host:port/mcp")
        if peer_id != own_id:
            peers[peer_id] = Peer(peer_id, url, secrets.get(peer_id))
    unknown = sorted(set(secrets) - set(peers) - {own_id})
    if unknown:
        log.warning("comfyui-mcp-bridge: peer_tokens for %s ignored: not in peers", ", ".join(unknown))
    return peers


def forwarded_by(headers: Mapping[str, str] | None) -> str | None:
    """The instance that forwarded this request to us, if it was forwarded."""
    return headers.get(FORWARDED_HEADER) if headers is not None else None


class Peers:
    """The configured peers of this instance and the calls forwarded to them."""

    def __init__(self, own_id: str, peers: dict[str, Peer], timeout_s: float = 10.0) -> None:
        self.own_id = own_id
        self.peers = peers
        self.timeout_s = timeout_s

    def get(self, instance: str, what: str) -> Peer:
        """The peer named ``instance``, or a PeerError saying ``what`` names an unknown instance."""
        peer = self.peers.get(instance)
        if peer is None:
            known = ", ".join(sorted(self.peers)) or "none are configured"
            raise PeerError(
                f"{what} belongs to instance {instance!r}, which is not one of this server's peers "
                f"(the peers setting; peers: {known})"
            )
        return peer

    @asynccontextmanager
    async def _client(self, peer: Peer, timeout: float) -> AsyncIterator[Client]:
        """An MCP client of ``peer``; its HTTP client is closed with it (the SDK leaves a given one open)."""
        http = httpx2.AsyncClient(
            headers=peer.headers(self.own_id),
            timeout=httpx2.Timeout(timeout, connect=self.timeout_s),
            follow_redirects=False,
        )
        async with (
            http,
            Client(streamable_http_client(peer.url, http_client=http), mode=PROTOCOL, cache=None) as client,
        ):
            yield client

    async def call_tool(
        self, peer: Peer, name: str, arguments: dict[str, Any], wait_s: float, progress: Progress | None
    ) -> CallToolResult:
        """Call ``name`` on ``peer`` with progress relayed; bounded by ``wait_s`` + the peer timeout."""
        budget = wait_s + self.timeout_s

        async def call() -> CallToolResult:
            async with self._client(peer, budget) as client:
                return await client.call_tool(name, arguments, progress_callback=progress)

        result: CallToolResult = await self._bounded(peer, f"{name} on", call(), budget)
        return result

    async def read_resource(self, peer: Peer, uri: str) -> bytes:
        """The bytes of ``uri`` read from ``peer``."""

        async def read() -> bytes:
            async with self._client(peer, self.timeout_s) as client:
                result = await client.read_resource(uri)
            for item in result.contents:
                if isinstance(item, BlobResourceContents):
                    return base64.b64decode(item.blob)
                if isinstance(item, TextResourceContents):
                    return item.text.encode()
            raise PeerError(f"peer {peer.id!r} ({peer.url}) returned nothing for {uri}")

        data: bytes = await self._bounded(peer, "resources/read on", read(), self.timeout_s * 3)
        return data

    async def _bounded(self, peer: Peer, what: str, work: Awaitable[Any], budget: float) -> Any:
        try:
            return await asyncio.wait_for(work, budget)
        except PeerError:
            raise
        except asyncio.TimeoutError:
            raise PeerError(
                f"{what} peer {peer.id!r} ({peer.url}): no answer within {budget:.0f} s"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any failure to reach the peer is the caller's tool error
            raise PeerError(f"{what} peer {peer.id!r} ({peer.url}) failed: {_reason(exc)}") from None

    async def status(self) -> list[dict[str, Any]]:
        """Each peer: whether it answers its health route, its queue length (counts only)."""
        async with httpx2.AsyncClient(timeout=min(self.timeout_s, 3.0), follow_redirects=False) as http:
            return list(await asyncio.gather(*(_probe(http, peer) for peer in self.peers.values())))


async def _probe(http: httpx2.AsyncClient, peer: Peer) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": peer.id, "url": peer.url, "answers": False}
    started = time.monotonic()
    try:
        response = await http.get(peer.health_url())
        data = response.json() if response.status_code == 200 else {}
    except Exception as exc:  # noqa: BLE001 - a peer that is down is reported, never raised
        entry["error"] = _reason(exc)
        return entry
    if not isinstance(data, dict) or data.get("status") != "ok":
        entry["error"] = f"HTTP {response.status_code} from {HEALTH_PATH}"
        return entry
    entry.update(
        answers=True,
        latency_ms=round((time.monotonic() - started) * 1000, 1),
        instance_id=data.get("instance_id"),
        queue_length=data.get("queue_length"),
    )
    return entry


def _reason(exc: BaseException) -> str:
    # The innermost cause of an SDK/transport failure, in one line (task groups wrap it).
    while getattr(exc, "exceptions", None):  # an ExceptionGroup (no builtin name on Python 3.10)
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
