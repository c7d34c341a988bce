"""MCP clients of the bridge for tests and benchmarks: every way in, with an optional bearer token."""

from __future__ import annotations

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
    http = httpx2.AsyncClient(headers=headers, timeout=timeout)
    mode = "legacy" if kind == "streamable-2025" else "auto"  # auto discovers 2026-07-28
    return Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode, **client)
