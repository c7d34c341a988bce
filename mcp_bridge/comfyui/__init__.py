"""ComfyUI: the one seam — the adapter (the only code that imports ComfyUI's modules and parses its
wire formats), the ``ComfyBackend`` port the rest of the bridge programs against, and the plain
values that cross it (artifacts, node definitions, events, model-file headers).

May import: the base modules only. ``tests/unit/test_layers.py`` holds the table.
"""
