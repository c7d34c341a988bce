"""A test-only stand-in for newer ComfyUIs' node replacements on the 0.3.x trees, which lack them.

Newer ComfyUIs give ``PromptServer.instance`` a ``node_replace_manager`` whose ``apply_replacements(prompt)``
swaps node types they removed for their successors, in place, before ``POST /prompt`` validates. This
node gives a 0.3.x server one of that shape (only when it has none) that knows one removed type:
``EmptyImageOld`` (inputs ``w``, ``h``, ``colour``) became ``EmptyImage``. Linked into ``custom_nodes``
only by tests.
"""

from __future__ import annotations

from typing import Any

import nodes
from server import PromptServer

OLD, NEW = "EmptyImageOld", "EmptyImage"
INPUTS = {"w": "width", "h": "height", "colour": "color"}


class Replacements:
    """Swaps ``EmptyImageOld`` nodes for ``EmptyImage`` (inputs renamed, batch_size 1) in place."""

    def apply_replacements(self, prompt: dict[str, Any]) -> None:
        if OLD in nodes.NODE_CLASS_MAPPINGS:  # still installed: nothing to replace
            return
        for node_id, node in list(prompt.items()):
            if not isinstance(node, dict) or node.get("class_type") != OLD:
                continue
            inputs = {INPUTS.get(name, name): value for name, value in node.get("inputs", {}).items()}
            prompt[node_id] = {**node, "class_type": NEW, "inputs": {**inputs, "batch_size": 1}}


if not hasattr(PromptServer.instance, "node_replace_manager"):
    PromptServer.instance.node_replace_manager = Replacements()

NODE_CLASS_MAPPINGS: dict[str, type] = {}
