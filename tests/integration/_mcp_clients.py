"""MCP clients for the integration tests: the Python SDK's (shared with bench/), and the Node ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult

from testbed.mcp_client import WAYS, connect

__all__ = ["JS_DIR", "WAYS", "connect", "node_modules"]

JS_DIR = Path(__file__).resolve().parent.parent / "js"


def node_modules() -> Path:
    """The Node clients, installed from the lock on first use (same helper as testbed/install.sh)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node >= 20 and npm are needed for the third-party client tests")
    subprocess.run(["bash", str(JS_DIR / "install.sh")], check=True, timeout=600)
    return JS_DIR / "node_modules"


def text(result: CallToolResult) -> str:
    """All the text blocks of a tool result, joined."""
    return " ".join(getattr(block, "text", "") for block in result.content)


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful tool result (fails the test with its text otherwise)."""
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content
