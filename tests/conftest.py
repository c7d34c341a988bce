"""Shared fixtures: a real ComfyUI per supported version, started once per test run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.server import VERSIONS, ComfyServer

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", params=VERSIONS, ids=[f"comfyui-{v}" for v in VERSIONS])
def comfy(request: pytest.FixtureRequest) -> Iterator[ComfyServer]:
    """A running ComfyUI (one per version for the whole run) with the bridge and the tiny models."""
    # Debug tools (raw workflows, sleeps) exist only for tests; users never turn them on.
    server = ComfyServer(request.param, env={"COMFYUI_MCP_DEBUG_TOOLS": "1"})
    server.start()
    yield server
    server.stop()


HOOK_FAILURES = (
    "mcp-bridge: event hook failed",
    "mcp-bridge: completion hook failed",
    "mcp-bridge: task_done hook failed",
    "Exception in thread",
)


@pytest.fixture(autouse=True)
def hooks_never_raise(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test on the shared server: nothing of ours failed in ComfyUI's threads meanwhile."""
    if "comfy" not in request.fixturenames:
        yield
        return
    server: ComfyServer = request.getfixturevalue("comfy")
    start = len(server.log_text())
    yield
    written = server.log_text()[start:]
    assert [line for line in written.splitlines() if any(m in line for m in HOOK_FAILURES)] == []


@pytest.fixture
def comfy_factory() -> Iterator[Callable[..., ComfyServer]]:
    """Start extra ComfyUI servers with other flags or environment; all are stopped after the test."""
    started: list[ComfyServer] = []

    def start(version: str = VERSIONS[0], **kwargs: Any) -> ComfyServer:
        server = ComfyServer(version, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the ComfyUI log to the report of a failed test that used a server."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, ComfyServer):
                report.sections.append((f"ComfyUI {value.version} log (tail)", value.log_tail(120)))
