"""The status panel's routes on a real ComfyUI: contents, permissions, settings, token, pushes."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mcp.types import CallToolResult, ToolListChangedNotification

from testbed.mcp_client import connect
from testbed.server import LATEST, ComfyServer

TOKEN_FILE = "comfyui-mcp-bridge.token"
SETTINGS_FILE = "comfyui-mcp-bridge.json"
POST_ROUTES = [
    "/mcp-bridge/token/reveal",
    "/mcp-bridge/output-folders",
    "/mcp-bridge/jobs/cancel",
    "/mcp-bridge/tool-profile",
]


class Reply:
    """Status, headers and parsed JSON body of one HTTP exchange."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.text = body.decode("utf-8", "replace")
        try:
            self.json: Any = json.loads(body) if body else None
        except ValueError:
            self.json = None


def call(
    server: ComfyServer,
    method: str,
    path: str,
    body: object = None,
    *,
    headers: dict[str, str] | None = None,
    address: str = "127.0.0.1",
    content_type: str | None = "application/json",
) -> Reply:
    """One request with exactly the headers given (``Host`` defaults to the address and port)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    sent = {"Host": f"{address}:{server.port}"}
    if data is not None and content_type:
        sent["Content-Type"] = content_type
    sent.update(headers or {})
    conn = http.client.HTTPConnection(address, server.port, timeout=30)
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def page_headers(server: ComfyServer, address: str = "127.0.0.1") -> dict[str, str]:
    """What ComfyUI's own page sends with a fetch() POST."""
    return {"Origin": f"http://{address}:{server.port}", "Sec-Fetch-Site": "same-origin"}


def token_file(server: ComfyServer) -> str:
    return (server.user_dir / TOKEN_FILE).read_text().strip()


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (None when there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


# -- the shared server (both ComfyUI versions) ----------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/api"], ids=["plain", "api"])
def test_status_reports_versions_endpoints_token_posture_and_folders(comfy: ComfyServer, prefix: str) -> None:
    reply = call(comfy, "GET", prefix + "/mcp-bridge/status")
    assert reply.status == 200, reply.text
    assert reply.headers.get("Cache-Control") == "no-store"
    snap = reply.json
    assert snap["up"] is True
    assert snap["comfyui_version"] == comfy.version
    assert snap["bridge_version"]
    assert snap["mcp"]["available"] is True
    assert [(e["id"], e["path"]) for e in snap["mcp"]["endpoints"]] == [
        ("streamable-http", "/mcp"),
        ("sse", "/mcp/sse"),
    ]
    assert snap["token"] == {"required": False, "available": True, "refusal": None, "file": TOKEN_FILE}
    assert isinstance(snap["sessions"], list)
    assert set(snap["jobs"]) == {"active", "recent"}
    folders = snap["output_folders"]
    assert Path(folders["comfyui_output"]) == comfy.output_dir
    assert folders["editable"] is True
    assert token_file(comfy) not in reply.text


@pytest.mark.parametrize("prefix", ["", "/api"], ids=["plain", "api"])
def test_the_page_can_reveal_the_token(comfy: ComfyServer, prefix: str) -> None:
    reply = call(comfy, "POST", prefix + "/mcp-bridge/token/reveal", {}, headers=page_headers(comfy))
    assert reply.status == 200, reply.text
    assert reply.json["token"] == token_file(comfy)
    assert reply.headers.get("Cache-Control") == "no-store"


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_post_routes_accept_json_only(comfy: ComfyServer, route: str, content_type: str | None) -> None:
    reply = call(comfy, "POST", route, b"{}", content_type=content_type)
    assert reply.status == 415, reply.text


@pytest.mark.parametrize("route", POST_ROUTES)
def test_post_routes_refuse_bodies_that_are_not_a_json_object(comfy: ComfyServer, route: str) -> None:
    assert call(comfy, "POST", route, b"not json").status == 400
    assert call(comfy, "POST", route, [1, 2]).status == 400
    assert call(comfy, "POST", route, b"{" + b" " * 20000 + b"}").status == 413


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["foreign-origin", "null-origin", "other-port", "cross-site"],
)
@pytest.mark.parametrize("route", ["/mcp-bridge/status", *POST_ROUTES])
def test_other_web_sites_are_refused(comfy: ComfyServer, route: str, headers: dict[str, str]) -> None:
    method = "GET" if route.endswith("status") else "POST"
    reply = call(comfy, method, route, None if method == "GET" else {}, headers=headers)
    assert reply.status == 403, reply.text
    assert "token" not in (reply.json or {})


@pytest.mark.parametrize("route", ["/mcp-bridge/status", *POST_ROUTES])
def test_a_rebound_host_name_is_refused(comfy: ComfyServer, route: str) -> None:
    method = "GET" if route.endswith("status") else "POST"
    host = f"rebind.example:{comfy.port}"
    reply = call(
        comfy,
        method,
        route,
        None if method == "GET" else {},
        headers={"Host": host, "Origin": f"http://{host}"},
    )
    assert reply.status == 421, reply.text


@pytest.fixture
def extra_folder(comfy: ComfyServer) -> Iterator[Path]:
    """A fresh folder; the allowed-folders list is restored afterwards."""
    before = call(comfy, "GET", "/mcp-bridge/status").json["output_folders"]["extra"]
    with tempfile.TemporaryDirectory(prefix="mcpb-folder-") as name:
        yield Path(name)
        for folder in call(comfy, "GET", "/mcp-bridge/status").json["output_folders"]["extra"]:
            if folder not in before:
                call(comfy, "POST", "/mcp-bridge/output-folders", {"remove": folder})


def test_output_folders_can_be_added_and_removed_and_are_saved(
    comfy: ComfyServer, extra_folder: Path
) -> None:
    folder = str(extra_folder)
    reply = call(comfy, "POST", "/mcp-bridge/output-folders", {"add": folder}, headers=page_headers(comfy))
    assert reply.status == 200, reply.text
    assert folder in reply.json["output_folders"]
    assert folder in call(comfy, "GET", "/api/mcp-bridge/status").json["output_folders"]["extra"]
    saved = json.loads((comfy.user_dir / SETTINGS_FILE).read_text())
    assert folder in saved["output_roots"]

    again = call(comfy, "POST", "/mcp-bridge/output-folders", {"add": folder + "/"})
    assert again.json["output_folders"].count(folder) == 1

    reply = call(comfy, "POST", "/api/mcp-bridge/output-folders", {"remove": folder})
    assert reply.status == 200 and folder not in reply.json["output_folders"]
    assert folder not in json.loads((comfy.user_dir / SETTINGS_FILE).read_text())["output_roots"]
    assert call(comfy, "POST", "/mcp-bridge/output-folders", {"remove": folder}).status == 404


def _bad_folders(tmp: Path) -> list[tuple[str, object]]:
    (tmp / "a-file").write_text("x")
    return [
        ("relative", "some/folder"),
        ("missing", str(tmp / "does-not-exist")),
        ("a-file", str(tmp / "a-file")),
        ("root", "/"),
        ("home", str(Path.home())),
        ("tilde", "~/pictures"),
        ("dotdot", str(tmp) + "/../x"),
        ("control-char", str(tmp) + "\x07"),
        ("not-a-string", 42),
        ("empty", ""),
    ]


def test_unusable_output_folders_are_refused_with_a_reason(comfy: ComfyServer, tmp_path: Path) -> None:
    before = call(comfy, "GET", "/mcp-bridge/status").json["output_folders"]["extra"]
    for name, value in _bad_folders(tmp_path):
        reply = call(comfy, "POST", "/mcp-bridge/output-folders", {"add": value})
        assert reply.status == 400, (name, reply.text)
        assert reply.json["error"].startswith("Folder refused"), (name, reply.json)
    for body in ({}, {"add": "/x", "remove": "/y"}, {"replace": "/x"}):
        assert call(comfy, "POST", "/mcp-bridge/output-folders", body).status == 400
    assert call(comfy, "GET", "/mcp-bridge/status").json["output_folders"]["extra"] == before


def test_cancelling_an_unknown_job_is_404(comfy: ComfyServer) -> None:
    for body in ({"job_id": "no-such-job"}, {"job_id": 5}, {}):
        reply = call(comfy, "POST", "/mcp-bridge/jobs/cancel", body, headers=page_headers(comfy))
        assert reply.status == 404, reply.text


async def _settings_event(server: ComfyServer, folder: Path) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{server.url}/ws?clientId=panel-test") as ws:
            first = await asyncio.wait_for(ws.receive_json(), 10)
            assert first["type"] == "status"
            reply = await asyncio.to_thread(
                call, server, "POST", "/mcp-bridge/output-folders", {"add": str(folder)}
            )
            assert reply.status == 200
            while True:
                message = await asyncio.wait_for(ws.receive(), 10)
                if message.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(message.data)
                    if data["type"] == "mcp_bridge.settings":
                        return dict(data["data"])


def test_a_settings_change_is_pushed_to_every_open_page(comfy: ComfyServer, extra_folder: Path) -> None:
    data = asyncio.run(_settings_event(comfy, extra_folder))
    assert str(extra_folder) in data["output_folders"]


# -- with the generation tools --------------------------------------------------------------------


def gen_args(**extra: Any) -> dict[str, Any]:
    seed = int.from_bytes(os.urandom(4), "big")  # vary: ComfyUI would serve a repeat from its cache
    return {"prompt": "a fox in the snow", "width": 64, "height": 64, "steps": 2, "seed": seed, **extra}


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def _generate(server: ComfyServer, **args: Any) -> CallToolResult:
    async with connect("streamable-2025", server.url) as client:
        return await client.call_tool("generate_image", gen_args(**args))


def test_the_tools_follow_output_folder_changes_at_once(comfy: ComfyServer, extra_folder: Path) -> None:
    target = extra_folder / "fox.png"
    refused = asyncio.run(_generate(comfy, output_path=str(target)))
    assert refused.is_error and "outside the allowed folders" in text_of(refused)

    assert call(comfy, "POST", "/mcp-bridge/output-folders", {"add": str(extra_folder)}).status == 200
    written = asyncio.run(_generate(comfy, output_path=str(target)))
    assert not written.is_error, text_of(written)
    assert target.is_file()

    assert call(comfy, "POST", "/mcp-bridge/output-folders", {"remove": str(extra_folder)}).status == 200
    again = asyncio.run(_generate(comfy, output_path=str(extra_folder / "fox2.png")))
    assert again.is_error and not (extra_folder / "fox2.png").exists()


async def _job_events(server: ComfyServer, steps: int) -> tuple[CallToolResult, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.url}/ws?clientId=panel-jobs") as ws:

        async def collect() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(message.data)
                    if data["type"] == "mcp_bridge.job":
                        events.append(data["data"])

        collector = asyncio.ensure_future(collect())
        try:
            result = await _generate(server, steps=steps, prompt="<b>bold</b> fox")
            job_id = (result.structured_content or {}).get("job_id")
            for _ in range(200):  # the last push may trail the result by a moment
                if any(e["job"]["job_id"] == job_id and e["job"]["state"] == "succeeded" for e in events):
                    break
                await asyncio.sleep(0.05)
        finally:
            collector.cancel()
    return result, [e for e in events if e["job"]["job_id"] == job_id]


def test_job_changes_are_pushed_throttled_and_end_with_the_outputs(comfy: ComfyServer) -> None:
    result, events = asyncio.run(_job_events(comfy, steps=20))
    assert not result.is_error, text_of(result)
    states = [e["job"]["state"] for e in events]
    assert states[-1] == "succeeded" and "running" in states, states
    final = events[-1]["job"]
    assert final["tool"] == "generate_image"
    assert "<b>bold</b> fox" in final["summary"]  # sent as data; the panel shows it as text
    (image,) = final["outputs"]
    assert (comfy.output_dir / image["subfolder"] / image["filename"]).is_file()
    assert events[-1]["active"] == 0
    progress = [e["job"]["progress"] for e in events if e["job"]["state"] == "running"]
    assert progress == sorted(progress)
    # At most one update per 0.25 s while running, plus the state changes (server-side times).
    running_for = (final["finished"] or 0) - (final["started"] or final["created"])
    assert len(events) <= running_for / 0.25 + 5, (len(events), running_for)


# -- ComfyUI reachable from the network: token required ----------------------------------------------


@pytest.fixture(scope="module")
def exposed() -> Iterator[ComfyServer]:
    """ComfyUI listening on all interfaces (the MCP token is required)."""
    server = ComfyServer(LATEST, listen="0.0.0.0")  # noqa: S104
    server.start()
    yield server
    server.stop()


def test_exposed_the_token_is_shown_only_to_a_browser_on_the_machine(exposed: ComfyServer) -> None:
    snap = call(exposed, "GET", "/mcp-bridge/status").json
    assert snap["token"]["required"] is True and snap["token"]["available"] is True
    route = "/mcp-bridge/token/reveal"
    assert call(exposed, "POST", route, {}).status == 403  # no Origin: not a browser page
    proxied = {**page_headers(exposed), "X-Forwarded-For": "203.0.113.9"}
    assert call(exposed, "POST", route, {}, headers=proxied).status == 403
    reply = call(exposed, "POST", route, {}, headers=page_headers(exposed))
    assert reply.status == 200 and reply.json["token"] == token_file(exposed)

    remote = non_loopback_address()
    if remote is not None:  # a browser elsewhere on the network
        snap = call(exposed, "GET", "/mcp-bridge/status", address=remote).json
        assert snap["token"]["available"] is False
        assert "network" in snap["token"]["refusal"]
        reply = call(exposed, "POST", route, {}, headers=page_headers(exposed, remote), address=remote)
        assert reply.status == 403 and "token" not in reply.json


async def _regenerate_while_connected(server: ComfyServer) -> tuple[dict[str, Any], list[str]]:
    old = token_file(server)
    events: list[str] = []
    async with connect("streamable-2025", server.url, old) as client:
        assert not (await client.call_tool("get_server_info", {})).is_error
        sessions = call(server, "GET", "/mcp-bridge/status").json["sessions"]
        events.append(f"sessions before: {len(sessions)}")
        reply = await asyncio.to_thread(
            call, server, "POST", "/api/mcp-bridge/token/regenerate", {}, headers=page_headers(server)
        )
        assert reply.status == 200, reply.text
        try:
            await client.call_tool("get_server_info", {})
            events.append("old session still works")
        except Exception as exc:  # the session is gone: any error will do
            events.append(f"old session refused: {type(exc).__name__}")
    return reply.json, events


def test_exposed_regenerating_the_token_disconnects_clients_using_the_old_one(exposed: ComfyServer) -> None:
    old = token_file(exposed)
    data, events = asyncio.run(_regenerate_while_connected(exposed))
    assert data["token"] != old and data["token"] == token_file(exposed)
    assert data["disconnected"] >= 1
    assert events[0] != "sessions before: 0"
    assert events[1].startswith("old session refused"), events
    assert call(exposed, "GET", "/mcp-bridge/status").json["sessions"] == []
    init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    refused = call(exposed, "POST", "/mcp", init, headers={**accept, "Authorization": f"Bearer {old}"})
    assert refused.status == 401

    async def works() -> bool:
        async with connect("streamable-2025", exposed.url, data["token"]) as client:
            return not (await client.call_tool("get_server_info", {})).is_error

    assert asyncio.run(works())


# -- ComfyUI with --enable-cors-header: no token routes; our own origin checks hold -------------------


@pytest.fixture(scope="module")
def cors() -> Iterator[ComfyServer]:
    """ComfyUI with ``--enable-cors-header`` and the output folders set by the environment."""
    with tempfile.TemporaryDirectory(prefix="mcpb-env-root-") as root:
        server = ComfyServer(
            LATEST, extra_args=["--enable-cors-header"], env={"COMFYUI_MCP_OUTPUT_ROOTS": root}
        )
        server.start()
        yield server
        server.stop()


def test_cors_mode_closes_the_token_routes(cors: ComfyServer) -> None:
    snap = call(cors, "GET", "/mcp-bridge/status").json
    assert snap["token"]["required"] is True
    assert snap["token"]["available"] is False and "--enable-cors-header" in snap["token"]["refusal"]
    for route in ("/mcp-bridge/token/reveal", "/mcp-bridge/token/regenerate", "/api/mcp-bridge/token/reveal"):
        reply = call(cors, "POST", route, {}, headers=page_headers(cors))
        assert reply.status == 403, reply.text
        assert token_file(cors) not in reply.text
    assert token_file(cors) == token_file(cors)  # unchanged by the refused regenerate


@pytest.mark.parametrize("route", ["/mcp-bridge/status", *POST_ROUTES])
def test_cors_mode_still_refuses_other_sites(cors: ComfyServer, route: str) -> None:
    """ComfyUI's origin check is off in CORS mode: the panel's own check must hold."""
    method = "GET" if route.endswith("status") else "POST"
    reply = call(
        cors, method, route, None if method == "GET" else {}, headers={"Origin": "http://evil.example"}
    )
    assert reply.status == 403, reply.text


def test_output_folders_set_by_the_environment_are_read_only(cors: ComfyServer, tmp_path: Path) -> None:
    folders = call(cors, "GET", "/mcp-bridge/status").json["output_folders"]
    assert folders["editable"] is False and folders["env_var"] == "COMFYUI_MCP_OUTPUT_ROOTS"
    reply = call(
        cors, "POST", "/mcp-bridge/output-folders", {"add": str(tmp_path)}, headers=page_headers(cors)
    )
    assert reply.status == 409
    assert not (cors.user_dir / SETTINGS_FILE).exists()


def test_the_panel_script_is_served_to_the_frontend(comfy: ComfyServer) -> None:
    listed = json.loads(call(comfy, "GET", "/extensions").text)
    ours = [path for path in listed if path.endswith("/mcp_bridge_panel.js")]
    assert len(ours) == 1, listed
    assert [p for p in listed if "comfyui-mcp-bridge" in p] == ours  # nothing else of ours gets imported
    script = call(comfy, "GET", ours[0])
    assert script.status == 200 and "registerExtension" in script.text
    assert "innerHTML" not in script.text
    # Its modules (.mjs: not listed, so not imported as extensions) are served as JavaScript.
    base = ours[0].rsplit("/", 1)[0]
    for module in ("mcp_bridge_common.mjs", "mcp_bridge_publish.mjs"):
        served = call(comfy, "GET", f"{base}/{module}")
        kind = served.headers.get("Content-Type", "").split(";")[0]
        assert served.status == 200 and kind in ("text/javascript", "application/javascript"), kind
        assert "innerHTML" not in served.text and f'from "./{module}"' in script.text


async def _profile_change(comfy: ComfyServer, profile: str) -> tuple[Reply, set[str], int]:
    told = asyncio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            told.set()

    async with connect("streamable-2025", comfy.url, message_handler=on_message) as client:
        await client.list_tools()  # the session is known to the server from its first request
        body = {"profile": profile}
        reply = await asyncio.to_thread(
            call, comfy, "POST", "/mcp-bridge/tool-profile", body, headers=page_headers(comfy)
        )
        await asyncio.wait_for(told.wait(), 30)
        names = {tool.name for tool in (await client.list_tools()).tools}
        ran = await client.call_tool("run_tool", {"tool": "list_controlnets", "arguments": {}})
    return reply, names, 0 if ran.is_error else 1


def test_the_tool_profile_is_changed_live_saved_and_announced(comfy: ComfyServer) -> None:
    try:
        reply, names, ran = asyncio.run(_profile_change(comfy, "core"))
        assert reply.status == 200 and reply.json["tool_profile"] == "core", reply.text
        assert "generate_image" in names and "inpaint" not in names and "run_tool" in names and ran == 1
        assert call(comfy, "GET", "/mcp-bridge/status").json["tool_profile"]["value"] == "core"
        assert json.loads((comfy.user_dir / SETTINGS_FILE).read_text())["tool_profile"] == "core"
        refused = call(comfy, "POST", "/mcp-bridge/tool-profile", {"profile": "tiny"})
        assert refused.status == 400 and "full, core, compact" in refused.text
    finally:
        assert call(comfy, "POST", "/mcp-bridge/tool-profile", {"profile": "full"}).status == 200
