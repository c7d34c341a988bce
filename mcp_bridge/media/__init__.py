"""Media: pure codecs — images in and out, artifacts' previews and conversions, contact sheets.
Blocking functions: callers run them off the event loop. No MCP, no paths policy.

May import: comfyui (the port's plain types) and the base modules. ``tests/unit/test_layers.py``
holds the table.
"""
