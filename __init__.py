"""ComfyUI entry point of comfyui-mcp-bridge: an MCP server inside ComfyUI's own web server.

ComfyUI imports this package from ``custom_nodes/``. It defines no nodes; it adds the MCP routes to
``PromptServer.instance`` and ships a status panel from ``js/``. Importing it outside ComfyUI is harmless.
"""

try:
    from .mcp_bridge import install_into_comfyui
except ImportError:  # imported as a plain module (pytest does that to a repository root with __init__.py)
    from mcp_bridge import install_into_comfyui

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
WEB_DIRECTORY = "./js"

install_into_comfyui()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
