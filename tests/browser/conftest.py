"""Browser fixtures: a real ComfyUI 0.3.75 with its real frontend, the newest frontend on PyPI and one with
App Mode's frontend, and Debian's Chromium via Playwright.

Never runs ``playwright install``: the browser is the system's ``chromium`` (installed by
``testbed/install.sh``), launched with ``executable_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.server import APP_MODE_FRONTEND, LATEST, NEWEST_FRONTEND, ComfyServer

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# First-run dialogs of the frontend that would cover the page.
FRONTEND_SETTINGS = {"Comfy.TutorialCompleted": True}


def chromium_path() -> str:
    """Debian's chromium binary (CHROMIUM overrides)."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("Debian's chromium is needed for the browser tests (testbed/install.sh installs it)")


def seeded_base(prefix: str) -> Path:
    """A base folder whose frontend settings skip the first-run dialogs."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    settings = base / "user" / "default" / "comfy.settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(FRONTEND_SETTINGS))
    return base


# Listening on all interfaces makes the token required: the panel's harder path (token filled in).
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


class Servers:
    """The browser tests' ComfyUIs (0.3.75 with the bridge), one per frontend and listen address, each
    started on first use and kept for the package: the newest frontend's serves the panel tests and the
    App Mode test alike (one extra start for the newest-frontend run)."""

    def __init__(self) -> None:
        self.running: dict[tuple[str | None, str], tuple[ComfyServer, Path]] = {}

    def get(self, frontend: str | None, listen: str) -> ComfyServer:
        key = (frontend, listen)
        if key not in self.running:
            base = seeded_base(f"comfy-browser-{frontend or 'pinned'}-")
            server = ComfyServer(LATEST, base_dir=base, listen=listen, frontend=frontend)
            self.running[key] = (server, base)
            server.start()
        return self.running[key][0]

    def panel(self, frontend: str | None) -> ComfyServer:
        """The server the panel tests use on ``frontend`` (None: the one ComfyUI pins)."""
        return self.get(frontend, ALL_INTERFACES)

    def stop(self) -> None:
        for server, base in self.running.values():
            server.stop()
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="package")
def servers() -> Iterator[Servers]:
    registry = Servers()
    yield registry
    registry.stop()


@pytest.fixture(
    scope="package", params=[None, NEWEST_FRONTEND], ids=["frontend-pinned", f"frontend-{NEWEST_FRONTEND}"]
)
def ui_server(request: pytest.FixtureRequest, servers: Servers) -> ComfyServer:
    """ComfyUI 0.3.75 with the bridge (token required), on the frontend it pins and on the newest one."""
    return servers.panel(request.param)


@pytest.fixture(
    scope="package",
    params=[(APP_MODE_FRONTEND, "127.0.0.1"), (NEWEST_FRONTEND, ALL_INTERFACES)],
    ids=[f"frontend-{APP_MODE_FRONTEND}", f"frontend-{NEWEST_FRONTEND}"],
)
def app_mode_server(request: pytest.FixtureRequest, servers: Servers) -> ComfyServer:
    """ComfyUI 0.3.75 with a frontend that has App Mode: 1.49.6 on loopback (token optional), and the
    newest (the panel tests' server)."""
    frontend, listen = request.param
    return servers.get(frontend, listen)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium for one test module.

    Module scope on purpose: Playwright's sync API keeps an event loop running in the main thread
    until it exits, and tests that follow call ``asyncio.run``.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
