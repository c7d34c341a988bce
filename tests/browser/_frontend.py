"""ComfyUI's frontend as a user sees it, the same way on every frontend the tests run on.

The sidebar tab is found by its role and accessible name (the tooltip the panel registers), and its
badge by what the tab shows besides its label: frontends rename their CSS classes and test ids
(1.32 ``.comfyui-mcp-bridge-tab-button`` + ``.p-badge``, 1.49 ``.sidebar-icon-badge``, 1.58 a
``data-testid``), not what the user reads.
"""

from __future__ import annotations

import time
from typing import Any

TAB_NAME = "MCP bridge: endpoint, clients and running tool calls"  # the panel's tooltip: aria-label
TAB_LABEL = "MCP"


def sidebar_tab(page: Any) -> Any:
    """The MCP tab's button in ComfyUI's sidebar (a locator: may match nothing)."""
    return page.get_by_role("button", name=TAB_NAME, exact=True)


def open_mcp_tab(page: Any) -> None:
    """Click the MCP tab and wait for the panel."""
    sidebar_tab(page).click()
    page.locator(".mcpb-root").wait_for()


def tab_badge(page: Any) -> str:
    """The count shown on the MCP tab ('' when none): the tab's visible text besides its label."""
    text = str(sidebar_tab(page).inner_text())
    return " ".join(text.replace(TAB_LABEL, " ").split())


def wait_tab_badge(page: Any, expected: str, timeout: float = 10.0) -> None:
    """Wait until the MCP tab shows ``expected`` ('' for no badge)."""
    deadline = time.monotonic() + timeout
    while (shown := tab_badge(page)) != expected:
        assert time.monotonic() < deadline, f"the MCP tab shows {shown!r}, expected {expected!r}"
        page.wait_for_timeout(100)


def frontend_version(page: Any) -> str:
    """The frontend version the page runs (what ComfyUI's About panel shows)."""
    return str(page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__"))
