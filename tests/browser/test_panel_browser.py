"""The status panel in ComfyUI 0.3.75's real frontend (the one it pins, and the newest on PyPI), driven by
Chromium while MCP clients work."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _frontend import frontend_version, open_mcp_tab, sidebar_tab, wait_tab_badge
from mcp.types import CallToolResult

from testbed.mcp_client import connect
from testbed.server import ComfyServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

HTML_PROMPT = '<img src=x onerror="window.__mcpbXss=1"><b>bold</b> fox'
PAGE_ERRORS: list[str] = []  # uncaught errors of the module's page
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "panel.png"


class McpCall(threading.Thread):
    """One MCP tool call running in the background (the AI client) while the test drives the page."""

    def __init__(self, server: ComfyServer, tool: str, arguments: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.tool, self.arguments = server.url, token_of(server), tool, arguments
        self.result: CallToolResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        async def call() -> CallToolResult:
            async with connect("streamable-2025", self.url, self.token) as client:
                return await client.call_tool(self.tool, self.arguments)

        try:
            self.result = asyncio.run(call())
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self, timeout: float = 180) -> CallToolResult:
        self.join(timeout)
        assert not self.is_alive(), f"{self.tool} did not return within {timeout} s"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def token_of(server: ComfyServer) -> str:
    """The bridge's current bearer token (required here: the test server listens on all interfaces)."""
    return (server.user_dir / "comfyui-mcp-bridge.token").read_text().strip()


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def gen_args(steps: int, prompt: str = "a fox in the snow") -> dict[str, Any]:
    seed = int.from_bytes(os.urandom(4), "big")  # never served from ComfyUI's cache
    return {"prompt": prompt, "width": 64, "height": 64, "steps": steps, "seed": seed}


@pytest.fixture(scope="module")
def page(ui_server: ComfyServer, browser: Any) -> Iterator[Any]:
    """ComfyUI's page with the MCP tab open (one page for the module: loading it takes seconds)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui_server.url)
    page = context.new_page()
    PAGE_ERRORS.clear()
    page.on("pageerror", lambda exc: PAGE_ERRORS.append(f"{exc}\n{getattr(exc, 'stack', '')}"))
    page.goto(ui_server.url + "/")
    open_mcp_tab(page)
    yield page
    context.close()


@pytest.fixture(autouse=True)
def panel_raises_nothing(page: Any) -> Iterator[None]:
    """After every test: the panel's script raised no uncaught error in the page meanwhile."""
    start = len(PAGE_ERRORS)
    yield
    assert [e for e in PAGE_ERRORS[start:] if "mcp_bridge_panel" in e] == []


def test_the_mcp_tab_appears_and_shows_the_endpoint(
    page: Any, ui_server: ComfyServer, artifacts: Path
) -> None:
    url = page.locator('.mcpb-endpoint[data-endpoint="streamable-http"] .mcpb-url')
    url.wait_for()
    assert url.text_content() == f"{ui_server.url}/mcp"
    sse = page.locator('.mcpb-endpoint[data-endpoint="sse"] .mcpb-url').text_content()
    assert sse == f"{ui_server.url}/mcp/sse"
    assert page.locator(".mcpb-state-text").text_content() == "Up"
    assert f"ComfyUI {ui_server.version}" in page.locator(".mcpb-status").text_content()
    assert page.locator(".mcpb-token-value").text_content() != ""
    if ui_server.frontend is not None:  # the run on another frontend really runs on it
        assert frontend_version(page) == ui_server.frontend
    page.screenshot(path=str(artifacts / "panel-idle.png"))


@pytest.mark.skipif(
    not os.environ.get("MCPB_UPDATE_DOCS_SCREENSHOT"), reason="updates docs/panel.png on demand"
)
def test_docs_screenshot(page: Any, ui_server: ComfyServer) -> None:
    """The README's picture: a connected client, a call in progress, an earlier result."""
    first = McpCall(ui_server, "generate_image", gen_args(steps=8, prompt="a lighthouse at dusk"))
    first.start()
    assert not first.finish().is_error
    second = McpCall(ui_server, "generate_image", gen_args(steps=60, prompt="a red fox in fresh snow"))
    second.start()
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('.mcpb-active .mcpb-job [role="progressbar"]');
            const img = document.querySelector('.mcpb-recent .mcpb-thumb img');
            return bar && Number(bar.getAttribute('aria-valuenow')) >= 40 && img && img.naturalWidth > 0
                && document.querySelector('.mcpb-session-name');
        }""",
        timeout=120_000,
    )
    box = page.locator(".mcpb-root").bounding_box()
    page.screenshot(
        path=str(DOCS_SCREENSHOT),
        clip={"x": 0, "y": box["y"], "width": box["x"] + box["width"], "height": box["height"]},
    )
    assert not second.finish().is_error


def test_copied_client_setups_carry_the_url_and_the_token(page: Any, ui_server: ComfyServer) -> None:
    token = token_of(ui_server)
    assert token not in page.locator(".mcpb-setups").text_content()  # shown masked ...
    copied = copy_setup(page, "claude-code")  # ... and filled in when copied
    url = f"{ui_server.url}/mcp"
    assert copied == f'claude mcp add --transport http comfyui {url} --header "Authorization: Bearer {token}"'
    page.locator('details[data-client="cursor"] summary').click()
    cursor = json.loads(copy_setup(page, "cursor"))
    assert cursor == {
        "mcpServers": {"comfyui": {"url": url, "headers": {"Authorization": f"Bearer {token}"}}}
    }


def copy_setup(page: Any, client: str) -> str:
    """Click a setup's Copy button and return what landed on the clipboard."""
    button = page.locator(f'details[data-client="{client}"] .mcpb-copy')
    button.click()
    page.wait_for_function("(b) => b.textContent === 'Copied'", arg=button.element_handle())
    return str(page.evaluate("() => navigator.clipboard.readText()"))


def test_the_token_is_hidden_until_revealed_and_can_be_regenerated(page: Any, ui_server: ComfyServer) -> None:
    token_file = ui_server.user_dir / "comfyui-mcp-bridge.token"
    value = page.locator(".mcpb-token-value")
    assert token_file.read_text().strip() not in page.locator(".mcpb-root").text_content()
    page.locator(".mcpb-reveal").click()
    page.wait_for_function("() => !document.querySelector('.mcpb-token-value').textContent.includes('•')")
    assert value.text_content() == token_file.read_text().strip()
    old = value.text_content()
    page.locator(".mcpb-regenerate").click()
    assert value.text_content() == old  # the first click only asks for confirmation
    page.locator(".mcpb-regenerate").click()
    page.wait_for_function(
        "(old) => document.querySelector('.mcpb-token-value').textContent !== old", arg=old
    )
    assert value.text_content() == token_file.read_text().strip() != old
    page.locator(".mcpb-reveal").click()  # hide it again
    page.wait_for_function("() => document.querySelector('.mcpb-token-value').textContent.includes('•')")


def test_a_generation_shows_progress_then_its_thumbnail_and_prompts_stay_text(
    page: Any, ui_server: ComfyServer, artifacts: Path
) -> None:
    call = McpCall(ui_server, "generate_image", gen_args(steps=12, prompt=HTML_PROMPT))
    call.start()
    running = page.locator(".mcpb-active .mcpb-job")
    running.first.wait_for(timeout=60_000)
    page.wait_for_function(
        """() => {
            const row = document.querySelector('.mcpb-active .mcpb-job[data-state="running"]');
            const bar = row && row.querySelector('[role="progressbar"]');
            return bar && Number(bar.getAttribute('aria-valuenow')) > 0;
        }""",
        timeout=120_000,
    )
    row = page.locator('.mcpb-active .mcpb-job[data-state="running"]').first
    assert row.locator(".mcpb-job-tool").text_content() == "generate_image"
    assert row.locator(".mcpb-cancel").is_visible()
    wait_tab_badge(page, "1")  # running MCP calls on the tab icon
    page.screenshot(path=str(artifacts / "panel-running.png"))

    result = call.finish()
    assert not result.is_error, text_of(result)
    job_id = result.structured_content["job_id"]
    done = page.locator(f'.mcpb-recent .mcpb-job[data-job-id="{job_id}"]')
    done.wait_for(timeout=30_000)
    thumb = done.locator(".mcpb-thumb img")
    thumb.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    href = done.locator(".mcpb-thumb").get_attribute("href")
    assert href.startswith("/api/view?") and "type=output" in href  # relative: works behind proxies
    (image,) = result.structured_content["images"]
    assert re.search(r"filename=" + re.escape(image["filename"]), href)

    summary = done.locator(".mcpb-job-summary")
    assert HTML_PROMPT[:40] in summary.text_content()  # the markup shows as text ...
    assert summary.locator("b, img").count() == 0  # ... and never became elements
    assert page.evaluate("() => window.__mcpbXss") is None
    wait_tab_badge(page, "")
    page.screenshot(path=str(artifacts / "panel-result.png"))


def test_the_cancel_button_cancels_the_call_and_the_client_is_told(page: Any, ui_server: ComfyServer) -> None:
    call = McpCall(ui_server, "generate_image", gen_args(steps=150))
    call.start()
    row = page.locator('.mcpb-active .mcpb-job[data-state="running"]').first
    row.wait_for(timeout=60_000)
    row.locator(".mcpb-cancel").click()
    result = call.finish()
    assert result.is_error and "cancelled" in text_of(result), text_of(result)
    page.locator('.mcpb-recent .mcpb-job[data-state="cancelled"]').first.wait_for(timeout=30_000)
    assert page.locator(".mcpb-active .mcpb-job").count() == 0


def test_the_connected_client_is_listed(page: Any, ui_server: ComfyServer) -> None:
    """A client that stays connected shows with its name and transport."""

    ready = threading.Event()
    release = threading.Event()

    def client_thread() -> None:
        async def run() -> None:
            async with connect("streamable-2025", ui_server.url, token_of(ui_server)) as client:
                await client.call_tool("get_server_info", {})
                ready.set()
                await asyncio.to_thread(release.wait, 60)

        asyncio.run(run())

    thread = threading.Thread(target=client_thread, daemon=True)
    thread.start()
    try:
        assert ready.wait(60)
        meta = page.locator(".mcpb-session-meta", has_text="streamable-http")
        meta.first.wait_for(timeout=30_000)
        assert page.locator(".mcpb-session-name").first.text_content().strip() != ""
    finally:
        release.set()
        thread.join(60)
    page.locator(".mcpb-sessions", has_text="No MCP client connected.").wait_for(timeout=30_000)


def test_without_the_sidebar_api_a_floating_panel_is_used(ui_server: ComfyServer, browser: Any) -> None:
    """Frontends without ``registerSidebarTab`` (simulated by hiding it from the module) get a button."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()

    def no_sidebar(route: Any) -> None:
        body = route.fetch().text()
        route.fulfill(
            body=body.replace("const manager = app.extensionManager;", "const manager = null;"),
            content_type="text/javascript",
        )

    page.route(re.compile(r".*/mcp_bridge_panel\.js$"), no_sidebar)
    page.goto(ui_server.url + "/")
    page.locator(".mcpb-float-button").click()
    url = page.locator('.mcpb-floating .mcpb-endpoint[data-endpoint="streamable-http"] .mcpb-url')
    url.wait_for()
    assert url.text_content() == f"{ui_server.url}/mcp"
    assert sidebar_tab(page).count() == 0
    context.close()
