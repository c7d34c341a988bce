"""The MCP gate inside a real ComfyUI (security.md §6 rows 16–20), under both of its middleware stacks."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
from _mcp_clients import WAYS, connect
from mcp import Client

from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio

ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
ROUTES = [
    ("POST", "/mcp"),
    ("POST", "/api/mcp"),
    ("GET", "/mcp"),
    ("DELETE", "/mcp"),
    ("GET", "/mcp/sse"),
    ("GET", "/api/mcp/sse"),
    ("POST", "/mcp/messages?session_id=" + "0" * 32),
    ("POST", "/api/mcp/messages?session_id=" + "0" * 32),
]


async def http(
    server: ComfyServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, Any, bytes]:
    """One raw request through 127.0.0.1 (streams are not read: status and headers matter here)."""
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method,
            server.url + path,
            headers=headers or {},
            data=io.BytesIO(body) if body is not None else None,  # raw bytes: aiohttp warns for big ones
            skip_auto_headers=["Content-Type"],
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            data = b"" if resp.content_type == "text/event-stream" else await resp.read()
            return resp.status, resp.headers, data


async def counts(server: ComfyServer, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, body = await http(server, "GET", "/mcp-bridge/sessions", headers)
    assert status == 200
    data: dict[str, Any] = json.loads(body)
    return data


def token_of(server: ComfyServer) -> str:
    return (server.user_dir / "comfyui-mcp-bridge.token").read_text().strip()


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_foreign_hosts_and_origins_are_refused_and_nothing_happens(
    comfy: ComfyServer, method: str, path: str
) -> None:
    before = await counts(comfy)
    cases = [
        ({"Host": "evil.example"}, 421),
        ({"Host": f"attacker.com:{comfy.port}"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
    ]
    for headers, status in cases:
        got, _, _ = await http(
            comfy, method, path, {**ACCEPT, **headers}, b"{}" if method == "POST" else None
        )
        assert got == status, headers
    after = await counts(comfy)
    assert after["counts"]["requests_total"] == before["counts"]["requests_total"]  # the SDK never saw them
    assert after["counts"]["sessions"] <= before["counts"]["sessions"]


@pytest.mark.parametrize("path", ["/mcp", "/mcp/messages?session_id=" + "0" * 32])
@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_posts_must_be_json(comfy: ComfyServer, path: str, ctype: str | None) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    got, _, _ = await http(comfy, "POST", path, headers, json.dumps(INIT).encode())
    assert got == 400


async def test_an_oversized_body_gets_413(comfy: ComfyServer) -> None:
    before = await counts(comfy)
    cap = before["limits"]["max_body_bytes"]
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "' + b"a" * cap + b'"}'
    got, _, _ = await http(comfy, "POST", "/mcp", ACCEPT, body)
    assert got == 413
    assert (await counts(comfy))["counts"]["sessions"] <= before["counts"]["sessions"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", -32700),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32602),
        (b"{}", -32602),
        (b'{"id": 1, "method": "initialize"}', -32602),
    ],
    ids=["not-json", "batch", "empty-object", "no-jsonrpc"],
)
async def test_malformed_json_rpc_is_a_400_with_a_json_rpc_error(
    comfy: ComfyServer, body: bytes, code: int
) -> None:
    tracebacks = comfy.log_text().count("Traceback")
    before = await counts(comfy)
    got, _, data = await http(comfy, "POST", "/mcp", ACCEPT, body)
    assert got == 400
    assert json.loads(data)["error"]["code"] == code
    assert comfy.log_text().count("Traceback") == tracebacks
    assert (await counts(comfy))["counts"]["sessions"] <= before["counts"]["sessions"]


async def test_an_unknown_method_gets_method_not_found(comfy: ComfyServer) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "no/such"}
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "no/such", "params": {"_meta": meta}}).encode()
    got, _, data = await http(comfy, "POST", "/mcp", headers, body)
    assert got == 404 and json.loads(data)["error"]["code"] == -32601


async def test_unknown_session_ids_get_404(comfy: ComfyServer) -> None:
    ping = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    headers = {**ACCEPT, "Mcp-Session-Id": "f" * 32, "MCP-Protocol-Version": "2025-11-25"}
    got, _, _ = await http(comfy, "POST", "/mcp", headers, ping)
    assert got == 404
    got, _, _ = await http(comfy, "POST", "/mcp/messages?session_id=" + "a" * 32, ACCEPT, ping)
    assert got == 404


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_wrong_token_is_refused_on_loopback_where_the_token_is_optional(
    comfy: ComfyServer, method: str, path: str
) -> None:
    before = await counts(comfy)
    assert before["token_required"] is False
    body = json.dumps(INIT).encode() if method == "POST" else None
    wrong = {**ACCEPT, "Authorization": "Bearer " + "x" * 43}
    got, headers, data = await http(comfy, method, path, wrong, body)
    assert got == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert json.loads(data)["error"]["message"] == "Invalid bearer token"
    after = await counts(comfy)
    assert after["counts"]["requests_total"] == before["counts"]["requests_total"]  # the SDK never saw it
    right = {**ACCEPT, "Authorization": f"Bearer {token_of(comfy)}"}
    got, _, _ = await http(comfy, "GET", "/mcp-bridge/sessions", right)
    assert got == 200


async def test_listening_on_all_interfaces_requires_the_token(comfy: ComfyServer, comfy_factory: Any) -> None:
    """ComfyUI with --listen 0.0.0.0 (reached through 127.0.0.1 only): no token, no MCP."""
    exposed: ComfyServer = comfy_factory(comfy.version, listen="0.0.0.0")  # noqa: S104 - the case under test
    token = token_of(exposed)
    query = f"token={token}&access_token={token}"
    for method, path in ROUTES:
        body = b"{}" if method == "POST" else None
        got, headers, _ = await http(exposed, method, path, ACCEPT, body)
        assert got == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
        sep = "&" if "?" in path else "?"
        got, _, _ = await http(exposed, method, path + sep + query, ACCEPT, body)
        assert got == 401, "a token in the query string must never be accepted"
        got, headers, _ = await http(
            exposed, method, path, {**ACCEPT, "Authorization": "Bearer " + "x" * 43}, body
        )
        assert got == 401 and "invalid_token" in headers["WWW-Authenticate"]
    status, _, _ = await http(exposed, "GET", "/mcp-bridge/sessions")
    assert status == 401
    assert token not in exposed.log_text()
    for kind in WAYS:
        client: Client
        async with connect(kind, exposed.url, token) as client:
            result = await client.call_tool("get_server_info", {})
            assert not result.is_error


async def test_with_cors_enabled_we_answer_preflights_and_label_streams(
    comfy: ComfyServer, comfy_factory: Any
) -> None:
    """--enable-cors-header: ComfyUI's own CORS middleware cannot reach streamed responses; ours does."""
    origin = "https://app.example"
    server: ComfyServer = comfy_factory(comfy.version, extra_args=["--enable-cors-header", origin])
    token = token_of(server)
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version, mcp-session-id",
    }
    got, headers, _ = await http(server, "OPTIONS", "/api/mcp", preflight)
    assert got == 204
    assert headers["Access-Control-Allow-Origin"] == origin
    assert "mcp-session-id" in headers["Access-Control-Allow-Headers"]
    got, headers, _ = await http(server, "OPTIONS", "/mcp", {**preflight, "Origin": "https://evil.example"})
    assert got == 403

    got, _, _ = await http(server, "POST", "/mcp", {**ACCEPT, "Origin": origin}, json.dumps(INIT).encode())
    assert got == 401  # CORS exposes ComfyUI to every site: the token is mandatory

    auth = {**ACCEPT, "Origin": origin, "Sec-Fetch-Site": "cross-site", "Authorization": f"Bearer {token}"}
    got, headers, _ = await http(server, "POST", "/mcp", auth, json.dumps(INIT).encode())
    assert got == 200
    assert headers["Access-Control-Allow-Origin"] == origin
    assert "Mcp-Session-Id" in headers["Access-Control-Expose-Headers"]
    got, headers, _ = await http(
        server, "GET", "/mcp/sse", {"Origin": origin, "Authorization": f"Bearer {token}"}
    )
    assert got == 200 and headers["Access-Control-Allow-Origin"] == origin
    got, _, _ = await http(
        server, "GET", "/mcp/sse", {"Origin": "https://evil.example", "Authorization": f"Bearer {token}"}
    )
    assert got == 403


LOOSE_JSON = {
    "duplicate-id": (b'{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "ping"}', "duplicate key 'id'"),
    "duplicate-nested": (
        b'{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": {}, "_meta": {}}}',
        "duplicate key '_meta'",
    ),
    "nan-id": (b'{"jsonrpc": "2.0", "id": NaN, "method": "ping"}', "NaN is not valid JSON"),
    "infinity": (b'{"jsonrpc": "2.0", "id": 4, "method": "ping", "params": {"x": -Infinity}}', "-Infinity"),
}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def open_session(server: ComfyServer) -> str:
    got, headers, _ = await http(server, "POST", "/mcp", ACCEPT, json.dumps(INIT).encode())
    assert got == 200
    return str(headers["mcp-session-id"])


async def post_routes(server: ComfyServer, sse_url: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Every MCP POST route, each as (path, headers) a well-formed message would be accepted on."""
    session = {**ACCEPT, "Mcp-Session-Id": await open_session(server), "MCP-Protocol-Version": "2025-11-25"}
    modern = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "ping"}
    return {
        "2025-new-session": ("/mcp", ACCEPT),
        "2025-session": ("/mcp", session),
        "2025-session-api": ("/api/mcp", session),
        "2026": ("/mcp", modern),
        "sse-messages": (sse_url, ACCEPT),
    }


async def test_loose_json_is_a_parse_error_on_every_post_route(comfy: ComfyServer) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(comfy.url + "/mcp/sse", headers={"Accept": "text/event-stream"}) as stream:
            assert stream.status == 200
            line = b""
            while not line.startswith(b"data: "):
                line = await stream.content.readline()
            sse_url = line[len(b"data: ") :].strip().decode()
            routes = await post_routes(comfy, sse_url)
            tracebacks = comfy.log_text().count("Traceback")
            before = await counts(comfy)
            for route, (path, headers) in routes.items():
                for case, (body, reason) in LOOSE_JSON.items():
                    got, _, data = await http(comfy, "POST", path, headers, body)
                    assert got == 400, (route, case)
                    error = json.loads(data)["error"]
                    assert error["code"] == -32700 and reason in error["message"], (route, case, error)
            after = await counts(comfy)
            assert after["rejections"]["json"] - before["rejections"].get("json", 0) == 20
            assert comfy.log_text().count("Traceback") == tracebacks
            # The same routes still serve strict JSON.
            listing = {"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": MODERN_META}}
            modern = {**routes["2026"][1], "Mcp-Method": "tools/list"}
            got, _, _ = await http(comfy, "POST", "/mcp", modern, json.dumps(listing).encode())
            assert got == 200
            got, _, _ = await http(
                comfy, "POST", sse_url, ACCEPT, b'{"jsonrpc": "2.0", "id": 9, "method": "ping"}'
            )
            assert got == 202


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize("version", ["2099-01-01", "garbage", "2024-10-07"])
async def test_an_unsupported_protocol_version_header_names_the_supported_versions(
    comfy: ComfyServer, method: str, version: str
) -> None:
    headers = {**ACCEPT, "MCP-Protocol-Version": version}
    if method != "POST":
        headers["Mcp-Session-Id"] = await open_session(comfy)
    body = json.dumps(INIT).encode() if method == "POST" else None
    got, _, data = await http(comfy, method, "/mcp", headers, body)
    assert got == 400
    error = json.loads(data)["error"]
    assert error["code"] == -32022 and version in error["message"]
    for supported in ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"):
        assert supported in error["message"]
    assert "_meta" not in error["message"]
    assert error["data"]["supported"][-1] == "2026-07-28"
