"""Delivery: files in and out — the path policy, staged inputs and masks, output writing, early
previews, presenting a job as an MCP result, housekeeping of staged files.

May import: specs, engine, media, comfyui and the base modules. ``tests/unit/test_layers.py`` holds
the table.
"""
