"""The one module that touches ComfyUI.

Everything ComfyUI-specific — its modules, its server object, the differences between its versions —
lives here, behind plain-Python functions and types. Other modules never import ComfyUI.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger("comfyui_mcp_bridge")


def running_server() -> Any | None:
    """Return ComfyUI's ``PromptServer.instance``, or None outside a running ComfyUI."""
    if "server" not in sys.modules:  # never import ComfyUI's server module ourselves
        return None
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


def comfyui_version() -> str | None:
    """ComfyUI's version string, as its own ``comfyui_version`` module states it."""
    try:
        import comfyui_version
    except ImportError:
        return None
    return str(getattr(comfyui_version, "__version__", "")) or None
