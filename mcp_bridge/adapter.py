"""The one module that touches ComfyUI.

Everything ComfyUI-specific — its modules, its server object, the differences between its versions —
lives here, behind plain-Python functions and types. Other modules never import ComfyUI.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ServerOptions:
    """How ComfyUI was started, as far as the bridge cares (from ``comfy.cli_args``)."""

    listen: str  # comma-separated addresses, as ComfyUI's --listen takes them
    port: int
    tls: bool
    cors_origin: str | None  # --enable-cors-header value ("*" when given bare), else None
    user_directory: str


def server_options() -> ServerOptions:
    """Read ComfyUI's command-line options and user directory."""
    import folder_paths
    from comfy.cli_args import args

    return ServerOptions(
        listen=str(args.listen),
        port=int(args.port),
        tls=bool(getattr(args, "tls_keyfile", None) and getattr(args, "tls_certfile", None)),
        cors_origin=getattr(args, "enable_cors_header", None),
        user_directory=str(folder_paths.get_user_directory()),
    )


def device_name() -> str:
    """The torch device ComfyUI computes on (e.g. ``cpu``)."""
    try:
        import comfy.model_management as mm

        return str(mm.get_torch_device())
    except Exception:  # noqa: BLE001 - a status field must never break a tool
        return "unknown"


def queue_length() -> int:
    """Prompts running or waiting in ComfyUI's queue."""
    server = running_server()
    if server is None:
        return 0
    return int(server.prompt_queue.get_tasks_remaining())
