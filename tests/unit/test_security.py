"""The MCP gate: Host/Origin allowlists, bearer token, content type, body cap, CORS (security.md §4.1, §6)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _bare import Bare, bare_server

from mcp_bridge import config
from mcp_bridge.http import security
from mcp_bridge.http.security import Policy, build_policy

pytestmark = pytest.mark.anyio

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
TOKEN = "T" * 43


def policy(**kwargs: Any) -> Policy:
    args: dict[str, Any] = {
        "listen": "127.0.0.1",
        "port": 8188,
        "tls": False,
        "cors_origin": None,
        "token": TOKEN,
        "require_token_on_loopback": False,
    }
    args.update(kwargs)
    return build_policy(**args)


# -- listen addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "beyond"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("127.0.0.1,::1", False),
        ("[::1]", False),
        ("0.0.0.0", True),
        ("0.0.0.0,::", True),
        ("::", True),
        ("192.168.1.5", True),
        ("127.0.0.1,10.0.0.2", True),
        ("mybox.lan", True),
    ],
)
def test_listening_beyond_loopback_is_detected_without_dns(listen: str, beyond: bool) -> None:
    assert security.listens_beyond_loopback(listen) is beyond
    assert policy(listen=listen).token_required is beyond


def test_the_token_is_required_with_cors_or_when_configured_on_loopback() -> None:
    assert policy().token_required is False
    assert policy(cors_origin="*").token_required is True
    assert policy(require_token_on_loopback=True).token_required is True


# -- Host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8188", True),
        ("localhost:8188", True),
        ("localhost", True),
        ("LOCALHOST.:9", True),
        ("[::1]:8188", True),
        ("127.0.0.2:8188", True),
        ("evil.example", False),
        ("attacker.com:8188", False),
        ("localhost.evil.example:8188", False),
        ("127.0.0.1.nip.io:8188", False),
        ("", False),
        (None, False),
        ("user@localhost", False),
        ("localhost:notaport", False),
    ],
)
def test_host_allowlist(host: str | None, allowed: bool) -> None:
    assert policy().host_allowed(host, "127.0.0.1") is allowed


def test_an_ip_host_equal_to_the_connection_address_is_accepted() -> None:
    p = policy(listen="0.0.0.0")
    assert p.host_allowed("192.168.1.5:8188", "192.168.1.5")
    assert not p.host_allowed("192.168.1.6:8188", "192.168.1.5")
    # learnt by the SDK's own (mirrored) check as well
    assert "192.168.1.5:*" in p.sdk_settings().allowed_hosts


def test_listen_addresses_and_extra_hosts_extend_the_allowlist() -> None:
    p = policy(listen="10.1.2.3", extra_allowed_hosts=["box.lan", "proxy.lan:443"])
    assert p.host_allowed("10.1.2.3:8188", None)
    assert p.host_allowed("box.lan:1234", None)
    assert p.host_allowed("proxy.lan:443", None)
    assert not p.host_allowed("proxy.lan:444", None)
    assert not p.host_allowed("proxy.lan", None)


def test_malformed_extra_entries_are_rejected() -> None:
    with pytest.raises(ValueError, match="extra_allowed_hosts"):
        policy(extra_allowed_hosts=["http://x/"])
    with pytest.raises(ValueError, match="extra_allowed_origins"):
        policy(extra_allowed_origins=["null"])
    with pytest.raises(ValueError, match="extra_allowed_origins"):
        policy(extra_allowed_origins=["ftp://x.example"])


# -- Origin and fetch metadata ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "verdict"),
    [
        ("http://127.0.0.1:8188", "derived"),
        ("http://localhost:6274", "derived"),
        ("https://localhost", "derived"),
        ("http://[::1]:3000", "derived"),
        ("null", "refused"),
        ("NULL", "refused"),
        ("http://evil.example", "refused"),
        ("http://localhost.evil.example", "refused"),
        ("file://", "refused"),
        ("chrome-extension://abc", "refused"),
        ("http://localhost:8188/path", "refused"),
        ("https://app.example", "explicit"),
        ("https://app.example:443", "explicit"),
        ("http://tool.lan:9999", "explicit"),
        ("https://app.example:8443", "refused"),
    ],
)
def test_origin_allowlist(origin: str, verdict: str) -> None:
    p = policy(extra_allowed_origins=["https://app.example", "http://tool.lan:*"])
    assert p.origin_verdict(origin, "127.0.0.1") == verdict


def base_headers(**extra: str) -> dict[str, str]:
    headers = {"Host": "127.0.0.1:8188", "Content-Type": "application/json"}
    headers.update(extra)
    return headers


@pytest.mark.parametrize(
    ("extra", "status", "reason"),
    [
        ({"Host": "evil.example:8188"}, 421, "host"),
        ({"Origin": "http://evil.example"}, 403, "origin"),
        ({"Origin": "null"}, 403, "origin"),
        ({"Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
        ({"Origin": "http://localhost:3000", "Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
        ({"Content-Type": "text/plain"}, 400, "content-type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 400, "content-type"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 400, "content-type"),
        ({"Content-Type": ""}, 400, "content-type"),
        ({"Content-Length": "10000000000"}, 413, "body-size"),
    ],
    ids=lambda v: str(v),
)
def test_gate_rejections(extra: dict[str, str], status: int, reason: str) -> None:
    rejection = policy().check("POST", base_headers(**extra), "127.0.0.1")
    assert rejection is not None
    assert (rejection.status, rejection.reason) == (status, reason)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"Origin": "http://127.0.0.1:8188", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "application/json; charset=utf-8"},
    ],
)
def test_gate_accepts(extra: dict[str, str]) -> None:
    gate = policy(extra_allowed_origins=["https://app.example"])
    assert gate.check("POST", base_headers(**extra), None) is None


# -- token --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "status", "challenge_error"),
    [
        (None, 401, False),
        ("Bearer ", 401, False),
        ("Basic " + TOKEN, 401, False),
        ("Bearer wrong", 401, True),
        ("Bearer " + TOKEN[:-1], 401, True),
        ("Bearer " + TOKEN + "x", 401, True),
        ("Bearer " + "é" * 43, 401, True),
        ("Bearer " + TOKEN, None, False),
        ("bearer   " + TOKEN, None, False),
    ],
)
def test_bearer_token_when_required(
    authorization: str | None, status: int | None, challenge_error: bool
) -> None:
    headers = base_headers()
    if authorization is not None:
        headers["Authorization"] = authorization
    rejection = policy(listen="0.0.0.0").check("POST", headers, None)
    if status is None:
        assert rejection is None
        return
    assert rejection is not None and rejection.status == status
    challenge = rejection.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is challenge_error
    assert TOKEN not in rejection.message


@pytest.mark.parametrize("authorization", ["Bearer wrong", "Bearer " + TOKEN[:-1], "Bearer " + "é" * 43])
@pytest.mark.parametrize("token", [TOKEN, None], ids=["token-loaded", "token-unavailable"])
def test_a_wrong_token_is_refused_where_the_token_is_optional(authorization: str, token: str | None) -> None:
    gate = policy(token=token)
    assert not gate.token_required
    headers = base_headers()
    assert gate.check("POST", headers, None) is None  # no token: fine on loopback
    rejection = gate.check("POST", {**headers, "Authorization": authorization}, None)
    assert rejection is not None and rejection.status == 401 and rejection.reason == "token-wrong"
    assert 'error="invalid_token"' in rejection.headers["WWW-Authenticate"]
    if token is not None:
        assert gate.check("POST", {**headers, "Authorization": "Bearer " + TOKEN}, None) is None


def test_the_token_is_generated_once_and_kept_owner_only(tmp_path: Path) -> None:
    token = security.load_or_create_token(tmp_path)
    path = security.token_path(tmp_path)
    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert security.load_or_create_token(tmp_path) == token
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_token_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    token = security.load_or_create_token(tmp_path)
    path = security.token_path(tmp_path)
    path.chmod(0o644)
    assert security.load_or_create_token(tmp_path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlinked_or_malformed_token_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text(TOKEN)
    os.symlink(target, security.token_path(tmp_path))
    with pytest.raises(security.TokenError, match="symlink"):
        security.load_or_create_token(tmp_path)
    security.token_path(tmp_path).unlink()
    security.token_path(tmp_path).write_text("short")
    with pytest.raises(security.TokenError, match="usable token"):
        security.load_or_create_token(tmp_path)


def test_an_empty_token_file_is_replaced(tmp_path: Path) -> None:
    security.token_path(tmp_path).write_text("")
    assert len(security.load_or_create_token(tmp_path)) >= 32


# -- the gate over HTTP (bare aiohttp app, no ComfyUI) ------------------------------------------

ROUTES = [
    ("POST", "/mcp"),
    ("POST", "/api/mcp"),
    ("GET", "/mcp"),
    ("DELETE", "/mcp"),
    ("GET", "/mcp/sse"),
    ("GET", "/api/mcp/sse"),
    ("POST", "/mcp/messages?session_id=" + "0" * 32),
    ("GET", "/mcp-bridge/sessions"),
]


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[Bare]:
    async with bare_server(tmp_path) as server:
        yield server


@pytest.fixture
async def exposed(tmp_path: Path) -> AsyncIterator[Bare]:
    """As if ComfyUI ran with --listen 0.0.0.0: the token is required."""
    async with bare_server(tmp_path, listen="0.0.0.0") as server:
        yield server


async def request(
    server: Bare,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    *,
    read_stream: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method,
            server.url + path,
            headers=headers or {},
            data=body,
            skip_auto_headers=["Content-Type"],
            timeout=aiohttp.ClientTimeout(total=10),
        ) as resp:
            # Streams (SSE) are not read: the status and headers are what matters here.
            streaming = resp.content_type == "text/event-stream" and not read_stream
            data = b"" if streaming else await resp.read()
            return resp.status, dict(resp.headers), data


def assert_untouched(server: Bare) -> None:
    counts = server.counts()
    assert counts["requests_total"] == 0  # nothing reached the SDK
    assert counts["sessions"] == 0 and counts["open_requests"] == 0


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),
        ({"Host": "attacker.com:8188"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
    ],
    ids=["host", "host-port", "origin", "origin-null", "cross-site"],
)
async def test_every_route_refuses_foreign_hosts_and_origins(
    bare: Bare, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    headers = {"Content-Type": "application/json", **headers}
    got, _, body = await request(bare, method, path, headers, b"{}" if method == "POST" else None)
    assert got == status
    assert b'"error"' in body
    assert_untouched(bare)


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_the_token_when_exposed(exposed: Bare, method: str, path: str) -> None:
    headers = {"Content-Type": "application/json"}
    body = b"{}" if method == "POST" else None
    query = ("&" if "?" in path else "?") + f"token={exposed.token}&access_token={exposed.token}"
    status, resp_headers, _ = await request(exposed, method, path + query, headers, body)
    assert status == 401  # a token in the query string is never accepted
    assert resp_headers["WWW-Authenticate"].startswith("Bearer")
    wrong = {**headers, "Authorization": "Bearer nope"}
    status, resp_headers, _ = await request(exposed, method, path, wrong, body)
    assert status == 401 and "invalid_token" in resp_headers["WWW-Authenticate"]
    assert_untouched(exposed)


async def test_with_the_token_an_exposed_server_serves_mcp(exposed: Bare) -> None:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {exposed.token}",
    }
    status, resp_headers, _ = await request(exposed, "POST", "/mcp", headers, json.dumps(INIT).encode())
    assert status == 200 and resp_headers.get("mcp-session-id")


@pytest.mark.parametrize(
    "ctype", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
@pytest.mark.parametrize("path", ["/mcp", "/mcp/messages?session_id=" + "0" * 32])
async def test_posts_must_be_json(bare: Bare, ctype: str | None, path: str) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    status, _, _ = await request(bare, "POST", path, headers, b'{"jsonrpc": "2.0"}')
    assert status == 400
    assert_untouched(bare)


async def test_an_oversized_body_gets_413_declared_or_streamed(tmp_path: Path) -> None:
    settings = config.Settings(max_body_bytes=4096)
    async with bare_server(tmp_path, settings) as server:
        big = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "x": "' + b"a" * 8192 + b'"}'
        status, _, _ = await request(server, "POST", "/mcp", {"Content-Type": "application/json"}, big)
        assert status == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"a" * 1024

        async with aiohttp.ClientSession() as session:
            async with session.post(
                server.url + "/mcp", data=chunks(), headers={"Content-Type": "application/json"}
            ) as resp:
                assert resp.status == 413  # chunked: no Content-Length, cut while streaming
        assert server.counts()["sessions"] == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, -32700),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "initialize"', 400, -32700),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', 400, -32602),
        (b"{}", 400, -32602),
        (b'{"id": 1, "method": "initialize"}', 400, -32602),
        (b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "initialize"}', 400, None),
    ],
    ids=["not-json", "truncated", "batch", "empty-object", "no-jsonrpc", "object-id"],
)
async def test_malformed_json_rpc_is_a_client_error(
    bare: Bare, body: bytes, status: int, code: int | None
) -> None:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    got, _, data = await request(bare, "POST", "/mcp", headers, body)
    assert got == status
    if code is not None:
        assert str(code).encode() in data
    assert bare.counts()["sessions"] == 0


async def test_an_unknown_method_gets_method_not_found_in_both_eras(bare: Bare) -> None:
    accept = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    modern = {**accept, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "no/such"}
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "no/such", "params": {"_meta": meta}}).encode()
    got, _, data = await request(bare, "POST", "/mcp", modern, body)
    assert got == 404 and json.loads(data)["error"]["code"] == -32601

    got, headers, _ = await request(bare, "POST", "/mcp", accept, json.dumps(INIT).encode())
    session = {**accept, "Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
    initialized = b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'
    got, _, _ = await request(bare, "POST", "/mcp", session, initialized)
    assert got == 202
    unknown = b'{"jsonrpc": "2.0", "id": 2, "method": "no/such"}'
    got, _, data = await request(bare, "POST", "/mcp", session, unknown, read_stream=True)
    assert got == 200 and b'"code":-32601' in data
    got, _, _ = await request(bare, "DELETE", "/mcp", session)
    assert got == 200 and bare.counts()["sessions"] == 0


async def test_unknown_session_ids_get_404(bare: Bare) -> None:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Mcp-Session-Id": "f" * 32,
        "MCP-Protocol-Version": "2025-11-25",
    }
    got, _, _ = await request(bare, "POST", "/mcp", headers, b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}')
    assert got == 404
    ping = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    path = "/mcp/messages?session_id=" + "a" * 32
    got, _, _ = await request(bare, "POST", path, {"Content-Type": "application/json"}, ping)
    assert got == 404
    assert bare.counts()["sessions"] == 0


async def test_invalid_settings_make_mcp_answer_503(tmp_path: Path) -> None:
    async with bare_server(tmp_path, config_error="max_sessions: must be at least 1") as server:
        status, _, body = await request(server, "GET", "/mcp/sse")
        assert status == 503 and b"max_sessions" in body


# -- CORS (only with --enable-cors-header) ------------------------------------------------------


async def test_without_cors_no_access_control_headers_are_sent(bare: Bare) -> None:
    headers = {
        "Origin": f"http://localhost:{bare.port}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    status, resp_headers, _ = await request(bare, "POST", "/mcp", headers, json.dumps(INIT).encode())
    assert status == 200
    assert "Access-Control-Allow-Origin" not in resp_headers


async def test_cors_preflight_and_streamed_responses_carry_our_headers(tmp_path: Path) -> None:
    async with bare_server(tmp_path, cors_origin="https://app.example") as server:
        preflight = {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version, "
            "mcp-session-id",
        }
        status, headers, _ = await request(server, "OPTIONS", "/api/mcp", preflight)
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "mcp-session-id" in headers["Access-Control-Allow-Headers"]
        assert "POST" in headers["Access-Control-Allow-Methods"]

        status, headers, _ = await request(
            server, "OPTIONS", "/mcp", {**preflight, "Origin": "https://evil.example"}
        )
        assert status == 403 and "Access-Control-Allow-Origin" not in headers

        post = {
            "Origin": "https://app.example",
            "Sec-Fetch-Site": "cross-site",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {server.token}",
        }
        status, headers, _ = await request(server, "POST", "/mcp", post, json.dumps(INIT).encode())
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Mcp-Session-Id" in headers["Access-Control-Expose-Headers"]

        # without the token (CORS makes it mandatory) the refusal is readable by the allowed page
        status, headers, _ = await request(server, "GET", "/mcp/sse", {"Origin": "https://app.example"})
        assert status == 401 and headers["Access-Control-Allow-Origin"] == "https://app.example"
