"""Panel: ComfyUI's side panel backend — its status routes and live pushes, the publish routes.

May import: http, tools, mcp, delivery, specs, engine, media, comfyui and the base modules.
``tests/unit/test_layers.py`` holds the table.
"""
