"""The adapter's use of newer ComfyUIs' capabilities (issue 24 #15, #16), on stand-ins of the same shape.

The 0.3.x trees in the test bed have neither ``node_replace_manager`` nor ``interrupt_if_running``:
their path is the one the integration tests run (test_jobs cancels running and pending prompts).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from mcp_bridge.comfyui import compat

# --- node replacements ---------------------------------------------------------------------------


class Replacer:
    """The shape of ComfyUI's NodeReplaceManager as /prompt uses it: ``apply_replacements(prompt)``
    edits the prompt in place (class type, inputs, and the output index links into a replaced node)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def apply_replacements(self, prompt: dict[str, Any]) -> None:
        self.seen.append(prompt)
        for node_id, node in list(prompt.items()):
            if node["class_type"] == "LatentOld":
                prompt[node_id] = {
                    "class_type": "EmptyLatentImage",
                    "inputs": {"width": node["inputs"]["w"], "height": node["inputs"]["h"], "batch_size": 1},
                }
        for node in prompt.values():  # LatentOld's output 1 is EmptyLatentImage's 0
            for value in node["inputs"].values():
                if isinstance(value, list) and prompt[value[0]]["class_type"] == "EmptyLatentImage":
                    value[1] = 0


class NewServer:
    def __init__(self) -> None:
        self.node_replace_manager = Replacer()


class OldServer:
    """A 0.3.x PromptServer: no node_replace_manager."""


PROMPT = {
    "5": {"class_type": "LatentOld", "inputs": {"w": 64, "h": 64}},
    "3": {"class_type": "KSampler", "inputs": {"latent_image": ["5", 1], "seed": 1}},
}


def test_replacements_are_applied_to_a_copy_where_comfyui_has_them() -> None:
    server = NewServer()
    original = copy.deepcopy(PROMPT)
    replaced = compat.with_node_replacements(server, PROMPT)
    assert replaced["5"] == {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1},
    }
    assert replaced["3"]["inputs"]["latent_image"] == ["5", 0]
    assert server.node_replace_manager.seen == [replaced]
    assert PROMPT == original  # the caller's prompt (a stored template) is untouched


def test_without_a_replace_manager_the_prompt_is_used_as_it_is() -> None:
    assert compat.with_node_replacements(OldServer(), PROMPT) is PROMPT


def test_a_manager_without_apply_replacements_is_no_capability() -> None:
    server = OldServer()
    server.node_replace_manager = object()  # type: ignore[attr-defined]
    assert compat.with_node_replacements(server, PROMPT) is PROMPT


# --- cancel by prompt ----------------------------------------------------------------------------


class Queue:
    """PromptQueue's state as cancel reads it: pending items, running items, one lock."""

    def __init__(self, pending: list[str], running: list[str]) -> None:
        self.mutex = threading.RLock()
        self.queue: list[tuple[Any, ...]] = [(i, p) for i, p in enumerate(pending)]
        self.currently_running = {i: (i, p) for i, p in enumerate(running)}
        self.deleted: list[str] = []

    def delete_queue_item(self, function: Any) -> bool:
        with self.mutex:
            for item in self.queue:
                if function(item):
                    self.queue.remove(item)
                    self.deleted.append(item[1])
                    return True
        return False


class NewQueue(Queue):
    """A newer PromptQueue: interrupt_if_running checks and interrupts under its own lock."""

    def __init__(self, pending: list[str], running: list[str]) -> None:
        super().__init__(pending, running)
        self.asked: list[str] = []

    def interrupt_if_running(self, prompt_id: str) -> bool:
        self.asked.append(prompt_id)
        with self.mutex:
            return any(item[1] == prompt_id for item in self.currently_running.values())


class Flag:
    def __init__(self) -> None:
        self.raised = 0

    def __call__(self) -> None:
        self.raised += 1


def test_a_newer_queue_interrupts_the_running_prompt_through_interrupt_if_running() -> None:
    queue, flag = NewQueue(pending=["b"], running=["a"]), Flag()
    assert compat.cancel_prompt(queue, "a", flag) == "interrupted"
    assert queue.asked == ["a"] and flag.raised == 0  # ComfyUI raised the flag itself, atomically
    assert queue.deleted == []


def test_a_newer_queue_says_not_found_for_a_prompt_that_is_not_running() -> None:
    queue, flag = NewQueue(pending=["b"], running=["a"]), Flag()
    assert compat.cancel_prompt(queue, "gone", flag) == "not_found"
    assert queue.asked == ["gone"] and flag.raised == 0


def test_a_pending_prompt_is_removed_without_any_interrupt() -> None:
    for queue in (NewQueue(pending=["b"], running=["a"]), Queue(pending=["b"], running=["a"])):
        flag = Flag()
        assert compat.cancel_prompt(queue, "b", flag) == "removed"
        assert queue.deleted == ["b"] and flag.raised == 0
        assert getattr(queue, "asked", []) == []


def test_an_older_queue_raises_the_flag_only_for_its_running_prompt() -> None:
    queue, flag = Queue(pending=["b"], running=["a"]), Flag()
    assert compat.cancel_prompt(queue, "gone", flag) == "not_found"
    assert flag.raised == 0
    assert compat.cancel_prompt(queue, "a", flag) == "interrupted"
    assert flag.raised == 1
