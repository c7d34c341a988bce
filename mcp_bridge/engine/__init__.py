"""Engine: jobs — the registry fed by ComfyUI's events, the runner that submits prompts, job ids,
and the peers (other instances) that run jobs of their own.

May import: comfyui (the port) and the base modules. ``tests/unit/test_layers.py`` holds the table.
"""
