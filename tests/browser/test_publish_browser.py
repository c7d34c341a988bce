"""Publishing the open workflow as an MCP tool from the panel, in Chromium, while a real MCP client listens.

ComfyUI 0.3.75 with the frontend it pins and with the newest on PyPI (the panel's own picker), and with
comfyui-frontend-package 1.49.6 and the newest, whose App Mode saves the selection as ``extra.linearData``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import json
import os
import shutil
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _frontend import frontend_version, open_mcp_tab
from mcp import Client
from mcp.types import CallToolResult, ImageContent, ToolListChangedNotification

from testbed.mcp_client import connect
from testbed.server import ComfyServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WORKFLOW = Path(__file__).parent / "workflows" / "tiny-txt2img.json"  # saved by ComfyUI's frontend
HTML_TITLE = '<img src=x onerror="window.__mcpbXss=1">Negative'
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "publish.png"
PAGE_ERRORS: list[str] = []
T = TypeVar("T")


class ListeningClient:
    """A 2025-era MCP session (SDK client, Streamable HTTP) kept open in its own thread: it counts
    ``notifications/tools/list_changed`` while the test drives the page, and runs calls on request."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token
        self.changed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Any] | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> ListeningClient:
        self._thread.start()
        assert self._ready.wait(60), "the MCP client did not connect"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._queue is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
        self._thread.join(30)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            self.changed.set()

    async def _main(self) -> None:
        self._loop, self._queue = asyncio.get_running_loop(), asyncio.Queue()
        try:
            async with connect(
                "streamable-2025", self.url, self.token, message_handler=self._on_message
            ) as c:
                self._ready.set()
                while (job := await self._queue.get()) is not None:
                    work, future = job
                    try:
                        future.set_result(await work(c))
                    except Exception as exc:  # handed to the test's thread
                        future.set_exception(exc)
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def run(self, work: Callable[[Client], Awaitable[T]], timeout: float = 180) -> T:
        """Run ``work(client)`` in the client's thread and return its result."""
        assert self._loop is not None and self._queue is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (work, future))
        return future.result(timeout)

    def tools(self) -> dict[str, Any]:
        async def listed(client: Client) -> dict[str, Any]:
            return {tool.name: tool for tool in (await client.list_tools()).tools}

        return self.run(listed)

    def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        return self.run(lambda client: client.call_tool(name, arguments))

    def wait_changed(self, timeout: float = 30) -> None:
        assert self.changed.wait(timeout), "no notifications/tools/list_changed arrived"
        self.changed.clear()


def token_of(server: ComfyServer) -> str | None:
    path = server.user_dir / "comfyui-mcp-bridge.token"
    return path.read_text().strip() if server.listen != "127.0.0.1" else None


def open_page(server: ComfyServer, browser: Any) -> tuple[Any, Any]:
    """ComfyUI's page with the MCP tab open; its uncaught errors go to PAGE_ERRORS."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.on("pageerror", lambda exc: PAGE_ERRORS.append(f"{exc}\n{getattr(exc, 'stack', '')}"))
    page.goto(server.url + "/")
    open_mcp_tab(page)
    return context, page


def load_workflow(page: Any, path: Path, nodes: int) -> None:
    """Open a workflow file as the user does (Workflow > Open uses this file input)."""
    page.set_input_files("#comfy-file-input", str(path))
    page.wait_for_function(
        """([name, count]) => window.app.graph.nodes.length === count
            && window.app.extensionManager.workflow.activeWorkflow?.filename === name""",
        arg=[path.name.removesuffix(".json").removesuffix(".app"), nodes],
        timeout=30_000,
    )


def pick(page: Any, node: str, widget: str, name: str | None = None) -> None:
    page.locator(f'.mcpb-pick[data-node="{node}"][data-widget="{widget}"]').check()
    if name is not None:
        page.locator(f'.mcpb-arg-name[data-node="{node}"][data-widget="{widget}"]').fill(name)


def checked_inputs(page: Any) -> list[str]:
    boxes = page.locator(".mcpb-pick:checked")
    return [f"{b.get_attribute('data-node')}.{b.get_attribute('data-widget')}" for b in boxes.all()]


def images_of(result: CallToolResult) -> list[ImageContent]:
    return [block for block in result.content if isinstance(block, ImageContent)]


def unpublish(page: Any, tool: str) -> None:
    button = page.locator(f'.mcpb-published[data-tool="{tool}"] .mcpb-published-unpublish')
    button.click()
    assert button.text_content() == "Confirm: unpublish"  # the first click only asks
    button.click()
    page.locator(f'.mcpb-published[data-tool="{tool}"]').wait_for(state="detached", timeout=30_000)


def test_publish_from_the_picker_call_it_over_mcp_and_unpublish(
    ui_server: ComfyServer, browser: Any, artifacts: Path
) -> None:
    PAGE_ERRORS.clear()
    context, page = open_page(ui_server, browser)
    with ListeningClient(ui_server.url, token_of(ui_server)) as client:
        assert "tiny_txt2img" not in client.tools()
        load_workflow(page, WORKFLOW, nodes=7)
        page.locator(".mcpb-publish-open").click()
        form = page.locator(".mcpb-publish-form")
        form.wait_for()
        assert form.locator(".mcpb-publish-source").get_attribute("data-source") == "picker"
        assert form.locator(".mcpb-publish-name").input_value() == "tiny_txt2img"  # from the workflow name
        description = form.locator(".mcpb-publish-description").input_value()
        assert "tiny-txt2img" in description and "Positive" in description and "Save Image" in description
        assert checked_inputs(page) == [] and form.locator('.mcpb-pick-output[data-node="9"]').is_checked()
        assert (
            page.locator('.mcpb-pick[data-widget="filename_prefix"]').count() == 0
        )  # the bridge names files

        form.locator('.mcpb-picker-node:has-text("#3")').click()  # shows the node on the canvas
        assert page.evaluate("() => Object.keys(window.app.canvas.selected_nodes)") == ["3"]
        pick(page, "6", "text", name="prompt")
        pick(page, "3", "seed")
        pick(page, "3", "steps")
        page.screenshot(path=str(artifacts / "publish-form.png"))
        form.locator(".mcpb-publish-submit").click()
        item = page.locator('.mcpb-published[data-tool="tiny_txt2img"]')
        item.wait_for(timeout=60_000)
        assert "Published tiny_txt2img" in page.locator(".mcpb-publish-message").text_content()
        assert item.get_attribute("data-available") == "1"
        assert (
            "prompt (text), seed (seed), steps (int)" in item.locator(".mcpb-published-inputs").text_content()
        )

        client.wait_changed()
        tool = client.tools()["tiny_txt2img"]
        props = tool.input_schema["properties"]
        assert set(props) == {"prompt", "seed", "steps", "output_path", "overwrite"}
        assert props["prompt"]["type"] == "string" and "Positive" in props["prompt"]["description"]
        assert props["steps"]["type"] == "integer" and props["steps"]["minimum"] == 1
        assert props["steps"]["default"] == 2  # the value saved in the workflow
        assert "random" in props["seed"]["description"], props["seed"]
        assert tool.description == description

        result = client.call("tiny_txt2img", {"prompt": "a blue square", "seed": 5, "steps": 1})
        assert not result.is_error, result.content
        (image,) = images_of(result)
        assert image.mime_type.startswith("image/")
        assert result.structured_content is not None and result.structured_content["seed"] == 5
        item.locator('.mcpb-last-run[data-state="succeeded"]').wait_for(timeout=30_000)  # its last runs

        # The README's picture: a second tool being picked above the published one and its last run.
        page.locator(".mcpb-publish-open").click()
        pick(page, "6", "text", name="prompt")
        pick(page, "3", "seed")
        pick(page, "3", "steps")
        page.locator('.mcpb-publish-form .mcpb-picker-node:has-text("#3")').click()
        shot = artifacts / "publish.png"
        page.locator(".mcpb-publish").evaluate("(e) => e.scrollIntoView({block: 'start'})")
        top, bottom = (
            page.locator(".mcpb-publish").bounding_box(),
            page.locator(".mcpb-published-tools").bounding_box(),
        )
        height = bottom["y"] + bottom["height"] - top["y"]
        page.screenshot(path=str(shot), clip={"x": 0, "y": top["y"], "width": 1300, "height": height})
        if os.environ.get("MCPB_UPDATE_DOCS_SCREENSHOT"):
            shutil.copyfile(shot, DOCS_SCREENSHOT)

        # The route's refusal is shown as given, and nothing changes.
        page.locator(".mcpb-publish-submit").click()
        error = page.locator(".mcpb-publish-error")
        page.wait_for_function("(e) => e.textContent !== ''", arg=error.element_handle())
        assert error.text_content() == "a tool named 'tiny_txt2img' already exists; choose another name"
        page.locator(".mcpb-publish-cancel").click()

        # Edit: a new name and description, announced like a publication; a bad name is refused as given.
        item.locator(".mcpb-published-edit").click()
        edit = item.locator(".mcpb-edit-form")
        edit.locator(".mcpb-edit-name").fill("bad name")
        edit.locator(".mcpb-edit-save").click()
        edit_error = edit.locator(".mcpb-edit-error")
        page.wait_for_function("(e) => e.textContent !== ''", arg=edit_error.element_handle())
        assert "the tool name must be 1-64 letters, digits" in edit_error.text_content()
        edit.locator(".mcpb-edit-name").fill("square_maker")
        edit.locator(".mcpb-edit-description").fill("Paints a tiny square of the prompt.")
        edit.locator(".mcpb-edit-save").click()
        renamed = page.locator('.mcpb-published[data-tool="square_maker"]')
        renamed.wait_for(timeout=30_000)
        assert renamed.locator(".mcpb-edit-form").count() == 0  # closed once saved
        client.wait_changed()
        tools = client.tools()
        assert (
            "tiny_txt2img" not in tools
            and tools["square_maker"].description == "Paints a tiny square of the prompt."
        )
        assert set(tools["square_maker"].input_schema["properties"]) == set(props)

        # Replace: the open workflow published again under the same tool, with other inputs.
        renamed.locator(".mcpb-published-replace").click()
        form.wait_for()
        assert form.locator(".mcpb-publish-name").input_value() == "square_maker"
        assert form.locator(".mcpb-publish-source").get_attribute("data-source") == "published"
        assert checked_inputs(page) == ["3.seed", "3.steps", "6.text"]  # the tool's picks are the default
        assert form.locator('.mcpb-arg-name[data-node="6"][data-widget="text"]').input_value() == "prompt"
        page.locator('.mcpb-pick[data-node="3"][data-widget="seed"]').uncheck()
        page.locator('.mcpb-pick[data-node="3"][data-widget="steps"]').uncheck()
        pick(page, "5", "width")
        form.locator(".mcpb-publish-submit").click()
        inputs = renamed.locator(".mcpb-published-inputs", has_text="Inputs: prompt (text), width (int)")
        inputs.wait_for(timeout=30_000)
        client.wait_changed()
        assert set(client.tools()["square_maker"].input_schema["properties"]) == {
            "prompt", "width", "output_path", "overwrite",
        }  # fmt: skip
        assert page.locator(".mcpb-published").count() == 1

        unpublish(page, "square_maker")
        client.wait_changed()
        assert "square_maker" not in client.tools()
    assert [e for e in PAGE_ERRORS if "mcp_bridge_panel" in e] == []
    context.close()


# -- App Mode (frontend 1.49.6 and the newest) -------------------------------------------------------------


def app_workflow(folder: Path) -> Path:
    """The tiny txt2img with a second Save Image, saved as an app: App Mode picked the prompt, seed and
    steps (in that order) and only the second Save Image as outputs."""
    data = json.loads(WORKFLOW.read_text())
    save = copy.deepcopy(next(n for n in data["nodes"] if n["id"] == 9))
    save.update(id=10, pos=[1580, 300], order=7, title="Save for the app")
    save["inputs"][0]["link"] = 19
    data["nodes"].append(save)
    next(n for n in data["nodes"] if n["id"] == 8)["outputs"][0]["links"].append(19)
    data["links"].append([19, 8, 0, 10, 0, "IMAGE"])
    data.update(last_node_id=10, last_link_id=19)
    next(n for n in data["nodes"] if n["id"] == 7)["title"] = HTML_TITLE  # must stay text
    data["extra"]["linearData"] = {
        "inputs": [[6, "text"], [3, "seed", {"height": 40}], [3, "steps"]],
        "outputs": [10],
    }
    path = folder / "tiny-app.app.json"
    path.write_text(json.dumps(data))
    return path


def test_app_mode_selection_is_the_default_and_is_published(
    app_mode_server: ComfyServer, browser: Any, tmp_path: Path, artifacts: Path
) -> None:
    PAGE_ERRORS.clear()
    context, page = open_page(app_mode_server, browser)
    assert frontend_version(page) == app_mode_server.frontend
    assert page.locator(".mcpb-state-text").text_content() == "Up"
    load_workflow(page, app_workflow(tmp_path), nodes=8)
    page.locator(".mcpb-publish-open").click()
    form = page.locator(".mcpb-publish-form")
    form.wait_for()
    note = form.locator(".mcpb-publish-source")
    assert note.get_attribute("data-source") == "app-mode" and "App Mode" in note.text_content()
    assert checked_inputs(page) == ["3.seed", "3.steps", "6.text"]
    assert form.locator('.mcpb-pick-output[data-node="10"]').is_checked()
    assert not form.locator('.mcpb-pick-output[data-node="9"]').is_checked()
    assert form.locator(".mcpb-picker img").count() == 0 and HTML_TITLE in form.text_content()
    page.screenshot(path=str(artifacts / "publish-app-mode.png"))
    form.locator(".mcpb-publish-submit").click()
    page.locator('.mcpb-published[data-tool="tiny_app"]').wait_for(timeout=60_000)

    (spec_file,) = (app_mode_server.user_dir / "comfyui-mcp-bridge" / "tools").glob("*.json")
    stored = json.loads(spec_file.read_text())["_bridge"]
    assert list(stored["inputs"]) == ["text", "seed", "steps"] and stored["outputs"] == ["10"]
    with ListeningClient(app_mode_server.url, token_of(app_mode_server)) as client:
        props = client.tools()["tiny_app"].input_schema["properties"]
        assert set(props) == {"text", "seed", "steps", "output_path", "overwrite"}
        result = client.call("tiny_app", {"text": "a green square", "steps": 1})
        assert not result.is_error, result.content
        assert len(images_of(result)) == 1  # only the output App Mode picked
        unpublish(page, "tiny_app")
        client.wait_changed()
        assert "tiny_app" not in client.tools()
    assert page.evaluate("() => window.__mcpbXss") is None
    assert [e for e in PAGE_ERRORS if "mcp_bridge_panel" in e] == []
    context.close()
