"""comfyui-mcp-bridge: a Model Context Protocol server hosted inside ComfyUI."""

from __future__ import annotations

import logging

from .version import __version__

log = logging.getLogger("comfyui_mcp_bridge")


def install_into_comfyui() -> bool:
    """Install the bridge on the running ComfyUI server; return False when there is none.

    Outside ComfyUI (tests, tools, a plain ``import``) there is no ``PromptServer.instance`` and this
    does nothing.
    """
    from .comfyui import adapter

    server = adapter.running_server()
    if server is None:
        return False
    try:
        from .bridge import install
    except ImportError as exc:  # most often the `mcp` package is missing from ComfyUI's Python
        log.error(
            "comfyui-mcp-bridge is not active: cannot import %s. Install the packages listed in its "
            "requirements.txt into the Python environment ComfyUI runs in, then restart ComfyUI.",
            exc.name or exc,
        )
        return False
    install(server)
    return True


__all__ = ["__version__", "install_into_comfyui"]
