"""Specs: tools as data — spec parsing, argument models with their bounds, graph building
(slots, bypasses, LoRA and ControlNet chains), conversion of a published UI selection into a spec.

Pure Python: it compiles and builds, it never queues.

May import: comfyui (the port's plain types only) and the base modules.
``tests/unit/test_layers.py`` holds the table.
"""
