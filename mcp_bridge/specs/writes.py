"""Which nodes of a workflow may write files: the one rule for every workflow run for a caller.

ComfyUI runs every output node of a prompt, and an output node writes where its inputs say: the core
dataset nodes (``SaveImageDataSetToFolder`` & co.) join ``output/<folder_name>`` with no containment.
A list of input *names* cannot hold, so the rule goes by node:

* the saving nodes the bridge knows (:data:`KNOWN_SAVERS`) may run: ComfyUI confines their files to
  its output folder and the bridge names them (``filename_prefix``);
* any other output node may run only when it takes no text at all, except a ``filename_prefix`` the
  bridge sets itself (the node is one of the tool's outputs);
* no node takes a text input named like a path (``path``, ``folder``, ``output_dir``, ...).

Published workflows (at publish and when a stored one is loaded), ``tool_folders`` specs and templates
are all checked with :func:`check_writes`. Pure Python: ComfyUI's facts are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..comfyui.backend import NodeInput

# Core and common saving nodes whose files ComfyUI keeps inside its output (or temp) folder.
KNOWN_SAVERS = frozenset(
    {
        "SaveImage",
        "PreviewImage",
        "SaveAnimatedWEBP",
        "SaveAnimatedPNG",
        "SaveWEBM",
        "SaveVideo",
        "VHS_VideoCombine",
    }
)
PREFIX = "filename_prefix"
TEXT = NodeInput("STRING")  # an input the node does not declare counts as text
# Inputs through which a node would write wherever the caller (or the workflow) says.
PATH_INPUTS = frozenset(
    "path file_path filepath output_path output_dir output_directory directory folder folder_name "
    "save_path filename file_name full_path save_to".split()
)


class WritesRefused(ValueError):
    """A node of the workflow could write outside the places the bridge allows; the message says which."""


def check_writes(
    prompt: Mapping[str, Mapping[str, Any]],
    *,
    named: Collection[str],
    is_output_node: Callable[[str], bool],
    node_inputs: Callable[[str], Mapping[str, NodeInput] | None],
) -> None:
    """Raise :class:`WritesRefused` unless every node of ``prompt`` writes only where the bridge allows.

    ``named`` are the output nodes whose ``filename_prefix`` the bridge sets (the tool's outputs);
    ``is_output_node`` tells whether ComfyUI runs a node class as an output.
    """
    for node_id, node in prompt.items():
        cls = str(node.get("class_type"))
        if cls in KNOWN_SAVERS:
            continue
        declared = node_inputs(cls) or {}
        values = node.get("inputs")
        present = set(values) if isinstance(values, Mapping) else set()
        texts = sorted(n for n in set(declared) | present if declared.get(n, TEXT).type == "STRING")
        paths = [n for n in texts if n in PATH_INPUTS]
        if paths:
            raise WritesRefused(
                f"node {node_id} ({cls}) writes where its input {paths[0]!r} says; a tool may only save "
                f"through the saving nodes the bridge knows ({', '.join(sorted(KNOWN_SAVERS))})"
            )
        if not is_output_node(cls):
            continue
        free = [n for n in texts if not (n == PREFIX and str(node_id) in named)]
        if free:
            raise WritesRefused(
                f"node {node_id} ({cls}) is an output node with the text input {free[0]!r}, which could "
                "name files anywhere; a tool may only save through the saving nodes the bridge knows "
                f"({', '.join(sorted(KNOWN_SAVERS))}) or output nodes that take no text"
            )
