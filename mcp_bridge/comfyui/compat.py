"""What newer ComfyUIs do differently on the way in and out of the queue, used where the running one can.

Detected by capability (the attribute is there), never by version string. The adapter passes ComfyUI's
own objects in; this module imports nothing of ComfyUI, so its logic is testable without it.

- **Node replacements**: newer ComfyUIs swap node types they removed for their successors before
  validating a ``POST /prompt`` (``PromptServer.node_replace_manager.apply_replacements``, which edits
  the prompt in place). Without it, such a workflow (an old template, a graph published earlier) is
  refused where the Run button works.
- **Cancel by prompt**: ``PromptQueue.interrupt_if_running(prompt_id)`` checks and interrupts under the
  queue's lock in one step; older queues get the same from our own check under that lock.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


def with_node_replacements(server: Any, prompt: dict[str, Any]) -> dict[str, Any]:
    """``prompt`` as ComfyUI's ``/prompt`` would validate it: a copy with the running ComfyUI's node
    replacements applied, or ``prompt`` itself when this ComfyUI has none (the caller's dict is never
    changed: the replacement edits nodes and the links into them in place)."""
    manager = getattr(server, "node_replace_manager", None)
    apply = getattr(manager, "apply_replacements", None)
    if not callable(apply):
        return prompt
    replaced = copy.deepcopy(prompt)
    apply(replaced)
    return replaced


def cancel_prompt(queue: Any, prompt_id: str, interrupt: Callable[[], None]) -> str:
    """Cancel one prompt on ComfyUI's ``PromptQueue``: ``"removed"`` if it was pending, ``"interrupted"``
    if it was running, ``"not_found"`` otherwise. Never touches another prompt.

    ``interrupt`` raises ComfyUI's global interrupt flag (used only by queues without
    ``interrupt_if_running``)."""
    if queue.delete_queue_item(lambda item: item[1] == prompt_id):
        return "removed"
    by_prompt = getattr(queue, "interrupt_if_running", None)
    if callable(by_prompt):
        return "interrupted" if by_prompt(prompt_id) else "not_found"
    # Holding the queue mutex keeps the running prompt from finishing and the next one from starting
    # while we decide; ComfyUI resets the interrupt flag when the next prompt starts.
    with queue.mutex:
        if any(item[1] == prompt_id for item in queue.currently_running.values()):
            interrupt()
            return "interrupted"
    return "not_found"
