"""Tools: the MCP handlers — the generation pipeline (validate, build, submit, follow, deliver,
present), batches, video, jobs, the catalog, saving, published workflows, and the services they share.

May import: mcp, delivery, specs, engine, media, comfyui and the base modules.
``tests/unit/test_layers.py`` holds the table.
"""
