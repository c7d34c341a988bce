"""ComfyUI entry point of comfyui-mcp-bridge: an MCP server inside ComfyUI's own web server.

ComfyUI imports this package from ``custom_nodes/``. It adds the MCP routes to ``PromptServer.instance``
and ships a status panel from ``js/``. Its one node, ``MCPBridgeResultPreview``, is what the bridge adds
to its own prompts to make result previews from the image itself (mcp_bridge/delivery/tensor_previews.py).
Importing it outside ComfyUI is harmless.
"""

try:
    from .mcp_bridge import install_into_comfyui
    from .mcp_bridge.delivery.tensor_previews import ResultPreview
except ImportError:  # imported as a plain module (pytest does that to a repository root with __init__.py)
    from mcp_bridge import install_into_comfyui
    from mcp_bridge.delivery.tensor_previews import ResultPreview

NODE_CLASS_MAPPINGS: dict[str, type] = {"MCPBridgeResultPreview": ResultPreview}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "MCPBridgeResultPreview": "MCP bridge result preview (internal)"
}
WEB_DIRECTORY = "./js"

install_into_comfyui()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
