"""MCP clients for the integration tests: the Python SDK's (shared with bench/), and the Node ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.mcp_client import WAYS, connect

__all__ = ["JS_DIR", "WAYS", "connect", "node_modules"]

JS_DIR = Path(__file__).resolve().parent.parent / "js"


def node_modules() -> Path:
    """The Node clients, installed from the lock on first use (same helper as testbed/install.sh)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node >= 20 and npm are needed for the third-party client tests")
    subprocess.run(["bash", str(JS_DIR / "install.sh")], check=True, timeout=600)
    return JS_DIR / "node_modules"
