"""MCP: the server object the transports run — the tool set, the live tool list, resources,
prompts, the MCP Apps result view (``ui://``).

May import: delivery, specs, engine, media, comfyui and the base modules.
``tests/unit/test_layers.py`` holds the table.
"""
