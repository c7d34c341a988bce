"""Browser fixtures: a real ComfyUI 0.3.75 with its real frontend (and one with App Mode's frontend), and
Debian's Chromium via Playwright.

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

from testbed.server import APP_MODE_FRONTEND, LATEST, ComfyServer

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


@pytest.fixture(scope="package")
def ui_server() -> Iterator[ComfyServer]:
    """ComfyUI 0.3.75 with the bridge (token required), started once for the browser tests."""
    base = seeded_base("comfy-browser-")
    # Listening on all interfaces makes the token required: the panel's harder path (token filled in).
    server = ComfyServer(LATEST, base_dir=base, listen="0.0.0.0")  # noqa: S104
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="package")
def app_mode_server() -> Iterator[ComfyServer]:
    """ComfyUI 0.3.75 with comfyui-frontend-package 1.49.6 (App Mode) from the test bed's overlay."""
    base = seeded_base("comfy-appmode-")
    server = ComfyServer(LATEST, base_dir=base, frontend=APP_MODE_FRONTEND)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


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
