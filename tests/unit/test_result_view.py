"""The result view (MCP Apps): which tools carry it, what it costs in tools/list, how it is served, that
it is safe by construction, and that a client without the extension gets exactly the same results."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult

from mcp_bridge.bridge import build_mcp, build_tools
from mcp_bridge.mcp import apps
from mcp_bridge.mcp import server as mcp_server
from mcp_bridge.tools.services import Services
from tests.unit.fake_comfy import fake_services

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ARGS = {"prompt": "a fox", "width": 64, "height": 64, "steps": 2, "seed": 7}
APPS_CLIENT = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def served(root: Path) -> AsyncIterator[Services]:
    async with fake_services(root) as services:
        yield services


def wire_size(tools: list[Any]) -> int:
    return len(json.dumps([t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]))


async def test_generation_tools_batch_and_wait_job_carry_the_view_and_nothing_else_does(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as services, Client(build_mcp(services)) as client:
        tools = (await client.list_tools()).tools
    bound = {t.name for t in tools if (t.meta or {}).get("ui", {}).get("resourceUri") == apps.VIEW_URI}
    # Every spec tool makes files (the shipped ones grow: inpaint, outpaint, ...); the others never carry it.
    assert bound == {*services.specs.specs, "generate_batch", "wait_job"}
    assert {"generate_image", "img2img", "upscale_image"} <= bound
    assert all(set((t.meta or {}).keys()) <= {"ui"} for t in tools)


async def test_the_view_and_its_save_tool_add_at_most_2_kib_to_tools_list(tmp_path: Path) -> None:
    async with served(tmp_path) as services:
        before_view = build_tools(services)
        before_view.tools = [t for t in before_view.tools if t.name != "save_output"]
        plain = mcp_server.create_mcp_server(services.settings, before_view, services.comfy)
        async with Client(plain) as client:
            before = wire_size((await client.list_tools()).tools)
        async with Client(build_mcp(services)) as client:
            after = wire_size((await client.list_tools()).tools)
    assert 0 < after - before <= 2048, after - before


async def test_the_view_is_served_as_an_mcp_app_and_the_extension_advertised(tmp_path: Path) -> None:
    async with served(tmp_path) as services, Client(build_mcp(services), extensions=[APPS_CLIENT]) as client:
        caps = client.server_capabilities
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        read = await client.read_resource(apps.VIEW_URI)
    assert caps.extensions is not None and EXTENSION_ID in caps.extensions
    assert listed[apps.VIEW_URI].mime_type == APP_MIME_TYPE
    (content,) = read.contents
    assert content.mime_type == APP_MIME_TYPE
    assert getattr(content, "text", None) == apps.view_html()


def test_the_view_runs_only_its_own_script_and_loads_nothing_from_the_network() -> None:
    html = apps.view_html()
    (csp,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    (script,) = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    style_digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'none'"
    assert policy["script-src"] == f"'sha256-{digest}'"
    assert policy["style-src"] == f"'sha256-{style_digest}'"
    assert "unsafe" not in csp
    assert not re.search(r"\son[a-z]+\s*=", html), "no inline event handlers"
    assert not re.search(r"https?://", html), "no external address anywhere"
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "fetch(", "XMLHttp")
    assert [sink for sink in sinks if sink in script] == []


def test_the_view_file_ships_with_the_package() -> None:
    assert apps.VIEW_FILE.is_relative_to(ROOT / "mcp_bridge")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(apps.VIEW_FILE)], cwd=ROOT, check=False)
    assert ignored.returncode == 1, "the view must not be git-ignored (the registry packs tracked files)"


def normalized(result: CallToolResult) -> str:
    data = result.model_dump(by_alias=True, mode="json")
    job_id = data["structuredContent"]["job_id"]
    data["structuredContent"].pop("timings")
    data["structuredContent"].pop("prompt_ids")
    text = json.dumps(data, sort_keys=True).replace(job_id, "JOB").replace(job_id.replace(".", "_"), "JOB")
    return re.sub(r"in \d+\.\d s", "in N s", text)


async def three_ways(services: Services, tool: str, arguments: dict[str, Any]) -> list[CallToolResult]:
    """The same call on a server without the view (today), and with it by a client without and with the
    extension."""
    unbound = mcp_server.create_mcp_server(services.settings, build_tools(services), services.comfy)
    mcp = build_mcp(services)
    results = []
    for server, extensions in ((unbound, []), (mcp, []), (mcp, [APPS_CLIENT])):
        async with Client(server, extensions=extensions) as client:
            results.append(await client.call_tool(tool, arguments))
    return results


async def test_a_client_without_the_extension_gets_exactly_the_same_result(tmp_path: Path) -> None:
    async with served(tmp_path) as services:
        today, without, with_view = await three_ways(services, "generate_image", ARGS)
    assert not without.is_error and without.structured_content is not None
    assert normalized(today) == normalized(without) == normalized(with_view)


BATCH = {"prompts": ["a fox"], "variations": 2, "seed": 7, "arguments": {"width": 64, "height": 64}}


def normalized_batch(result: CallToolResult) -> str:
    data = result.model_dump(by_alias=True, mode="json")
    text = json.dumps(data, sort_keys=True)
    for item in data["structuredContent"]["items"]:
        for prompt_id in item["parameters"]["prompt_ids"]:
            text = text.replace(prompt_id, "PROMPT")
        job_id = item["job_id"]
        text = text.replace(job_id, "JOB").replace(job_id.replace(".", "_"), "JOB")
    return text


async def test_a_client_without_the_extension_gets_exactly_todays_batch_result(tmp_path: Path) -> None:
    async with served(tmp_path) as services:
        today, without, with_view = await three_ways(services, "generate_batch", BATCH)
    assert not without.is_error and without.structured_content is not None
    assert [i["seed"] for i in without.structured_content["items"]] == [7, 8]
    assert normalized_batch(today) == normalized_batch(without) == normalized_batch(with_view)


async def test_save_output_writes_a_result_under_the_output_path_rules(tmp_path: Path) -> None:
    async with served(tmp_path) as services, Client(build_mcp(services)) as client:
        made = await client.call_tool("generate_image", ARGS)
        assert made.structured_content is not None
        uri = made.structured_content["images"][0]["uri"]
        saved = await client.call_tool("save_output", {"uri": uri, "output_path": "kept/fox.webp"})
        again = await client.call_tool("save_output", {"uri": uri, "output_path": "kept/fox.webp"})
        unknown = await client.call_tool(
            "save_output", {"uri": "comfy://output/other.png", "output_path": "x.png"}
        )
        escape = await client.call_tool("save_output", {"uri": uri, "output_path": "../fox.png"})
        peer = await client.call_tool(
            "save_output", {"uri": "comfy://zz9/output/fox.png", "output_path": "y.png"}
        )
        target = Path(services.comfy.output_directory()) / "kept" / "fox.webp"
    assert not saved.is_error and str(target.resolve()) in saved.content[0].text  # type: ignore[union-attr]
    assert target.read_bytes()[8:12] == b"WEBP"
    assert again.is_error and "already exists" in again.content[0].text  # type: ignore[union-attr]
    assert unknown.is_error and "not a result of this server" in unknown.content[0].text  # type: ignore[union-attr]
    assert escape.is_error and "output_path" in escape.content[0].text  # type: ignore[union-attr]
    assert peer.is_error and "instance 'zz9'" in peer.content[0].text  # type: ignore[union-attr]
    assert "peers" in peer.content[0].text  # type: ignore[union-attr]
