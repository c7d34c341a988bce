"""MCP clients of the bridge for tests and benchmarks: every way in, with an optional bearer token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

WAYS = ("sse", "streamable-2025", "streamable-2026")


def connect(kind: str, url: str, token: str | None = None, timeout: float = 120, **client: Any) -> Client:
    """An SDK client for one way in; ``url`` is the server's base URL (plus ``/api`` if wanted).

    ``client`` goes to :class:`mcp.Client` (e.g. ``list_roots_callback``).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if kind == "sse":
        return Client(sse_client(url + "/mcp/sse", headers=headers), mode="legacy", **client)
    mode = "legacy" if kind == "streamable-2025" else "auto"  # auto discovers 2026-07-28
    return Client(_streamable(url + "/mcp", headers, timeout), mode=mode, **client)


@contextlib.asynccontextmanager
async def _streamable(url: str, headers: dict[str, str], timeout: float) -> AsyncIterator[Any]:
    """The SDK's Streamable HTTP transport over an HTTP client of ours, closed with it (the SDK
    leaves a client it was given open: its connections would leak)."""
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams
