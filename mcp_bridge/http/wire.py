"""Checks on what a client sent, made before the SDK sees it: strict JSON and the protocol version header.

The SDK parses bodies leniently (Python's ``json`` and pydantic accept duplicate keys, last one wins,
and ``NaN``/``Infinity``), and sends an unknown ``MCP-Protocol-Version`` to its 2026-era path, whose
answer ("params._meta must be an object …") does not say what was wrong. Both are refused here with a
message naming the problem and what is valid.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from mcp.types import RequestId, UnsupportedProtocolVersionErrorData
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

#: Every protocol version the Streamable HTTP endpoint serves, oldest first.
SUPPORTED_VERSIONS: tuple[str, ...] = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)


class _Refused(ValueError):
    """A construct strict JSON (RFC 8259, one value per key) does not allow."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key[:64]!r} in an object")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise _Refused(f"{name} is not valid JSON (numbers must be finite)")


def parse(body: bytes) -> tuple[Any, str | None]:
    """``(value, None)`` for a strict JSON body, else ``(None, why not)`` (duplicate keys, NaN/Infinity,
    bad syntax or encoding)."""
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant), None
    except _Refused as exc:
        return None, str(exc)
    except RecursionError:
        return None, "the JSON is nested too deeply"
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return None, f"not valid JSON ({exc})"


def json_problem(body: bytes) -> str | None:
    """Why ``body`` is not strict JSON, or None."""
    return parse(body)[1]


def _messages(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def is_initialize(value: Any) -> bool:
    """True when a parsed body is (or, in a batch, holds) an ``initialize`` request."""
    return any(m.get("method") == "initialize" for m in _messages(value))


def request_ids(value: Any) -> list[str]:
    """The ids (as JSON text) of the requests in a parsed body; notifications and responses have none."""
    return [json.dumps(m["id"]) for m in _messages(value) if "method" in m and m.get("id") is not None]


def request_id(value: Any) -> RequestId | None:
    """The id of a parsed body that is one JSON-RPC request, for an error answering it; else None
    (a batch, a notification, a response, an id that is no string or integer)."""
    if not isinstance(value, dict) or "method" not in value:
        return None
    found = value.get("id")
    if isinstance(found, str) or (isinstance(found, int) and not isinstance(found, bool)):
        return found
    return None


def unsupported_version_data(requested: str | None) -> dict[str, Any]:
    """The spec's UnsupportedProtocolVersionError data: the per-request versions this server serves (what
    ``server/discover`` lists; handshake-era clients negotiate in ``initialize``) and the requested one
    (clipped: a header may hold 8 KB)."""
    supported = list(MODERN_PROTOCOL_VERSIONS)
    data = UnsupportedProtocolVersionErrorData(supported=supported, requested=(requested or "")[:128])
    return data.model_dump(mode="json", by_alias=True)


def protocol_version_problem(value: str | None) -> str | None:
    """Why an ``MCP-Protocol-Version`` header value cannot be served, or None (absent or supported)."""
    if value is None or value in SUPPORTED_VERSIONS:
        return None
    shown = "".join(ch if ch.isprintable() else "?" for ch in value[:40])
    return f"Unsupported MCP-Protocol-Version {shown!r}; supported versions: {', '.join(SUPPORTED_VERSIONS)}"
