"""HTTP: the MCP routes on ComfyUI's aiohttp server — the gate (Host, Origin, token, body limits),
the ASGI bridge to the SDK's transports, sessions and their bounds, the legacy SSE backlog.

It serves a low-level MCP server it is given; it knows no tool.

May import: nothing but the base modules (config, version, addresses). ``tests/unit/test_layers.py``
holds the table.
"""
