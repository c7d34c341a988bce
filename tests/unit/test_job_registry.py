"""The job registry, driven with the event sequences ComfyUI emits."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp_bridge.comfyui.artifacts import Artifact
from mcp_bridge.engine.jobs import JobRegistry, JobState
from tests.unit.comfy_events import feed, finish

PROMPT = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
    "2": {"class_type": "KSampler", "inputs": {}},
    "3": {"class_type": "SaveImage", "inputs": {}},
}


def history(status: str, messages: list[Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "status": {"status_str": status, "completed": status == "success", "messages": messages},
        "outputs": outputs or {},
    }


def test_a_job_runs_through_its_states_and_collects_its_images() -> None:
    registry = JobRegistry()
    job = registry.create("p1", "generate_image", PROMPT)
    seen: list[str] = []
    job.subscribe(lambda j: seen.append(j.message()))
    assert job.state is JobState.QUEUED
    feed(registry, "execution_start", {"prompt_id": "p1"})
    assert job.state is JobState.RUNNING
    feed(registry, "executing", {"node": "2", "prompt_id": "p1"})
    feed(registry, "progress", {"value": 1, "max": 4, "node": "2", "prompt_id": "p1"})
    feed(registry, "progress", {"value": 3, "max": 4, "node": "2", "prompt_id": "p1"})
    assert "step 3/4" in job.message() and job.node_type == "KSampler"
    image = Artifact("3", "image", "a.png", "mcp", "output", "image/png")
    finish(registry, "p1", history("success", []), [image])
    assert job.state is JobState.SUCCEEDED
    assert job.artifacts == [image]
    assert job.to_dict()["outputs"] == [{"filename": "a.png", "subfolder": "mcp", "type": "output"}]
    assert any("step 1/4" in m for m in seen) and seen[-1] == "succeeded"


def test_progress_fraction_grows_with_nodes_and_steps() -> None:
    registry = JobRegistry()
    job = registry.create("p", "t", PROMPT)
    values = [job.fraction()]
    for event, data in [
        ("execution_cached", {"nodes": ["1"]}),
        ("executing", {"node": "2"}),
        ("progress", {"value": 2, "max": 4, "node": "2"}),
        ("executing", {"node": "3"}),
    ]:
        feed(registry, event, {**data, "prompt_id": "p"})
        values.append(job.fraction())
    assert values == sorted(values) and values[0] == 0 and values[-1] < 1


def test_an_error_message_in_history_makes_a_failed_job_with_comfyuis_type_and_message() -> None:
    registry = JobRegistry()
    job = registry.create("p", "t", PROMPT)
    err = {
        "prompt_id": "p",
        "node_id": "2",
        "node_type": "KSampler",
        "exception_type": "ValueError",
        "exception_message": "bad latent",
    }
    finish(registry, "p", history("error", [["execution_error", err]]))
    assert job.state is JobState.FAILED
    assert (
        job.error is not None and job.error["type"] == "ValueError" and job.error["message"] == "bad latent"
    )


def test_an_interrupt_is_cancelled_when_we_asked_and_interrupted_when_someone_else_did() -> None:
    registry = JobRegistry()
    ours, theirs = registry.create("a", "t", PROMPT), registry.create("b", "t", PROMPT)
    ours.cancel_requested = True
    interrupted = [["execution_interrupted", {"prompt_id": "x", "node_id": "2"}]]
    finish(registry, "a", history("error", interrupted))
    finish(registry, "b", history("error", interrupted))
    assert ours.state is JobState.CANCELLED
    assert theirs.state is JobState.INTERRUPTED


def test_events_of_unknown_prompts_change_nothing() -> None:
    registry = JobRegistry()
    job = registry.create("p", "t", PROMPT)
    feed(registry, "execution_start", {"prompt_id": "other"})
    finish(registry, "other", history("success", []))
    assert job.state is JobState.QUEUED and registry.get("other") is None


def test_queue_positions_follow_comfyuis_pending_order() -> None:
    view: tuple[list[str], list[str]] = ([], ["x", "b", "a"])
    registry = JobRegistry(queue_view=lambda: view)
    a, b = registry.create("a", "t", PROMPT), registry.create("b", "t", PROMPT)
    feed(registry, "status", {})
    assert (a.queue_position, b.queue_position) == (3, 2)
    view = (["b"], ["a"])
    registry.refresh_positions()
    assert b.state is JobState.RUNNING and a.queue_position == 1


def test_waiting_times_out_then_returns_true_once_the_job_finished() -> None:
    async def scenario() -> tuple[bool, bool]:
        registry = JobRegistry()
        job = registry.create("p", "t", PROMPT)
        first = await job.wait(0.01)
        asyncio.get_running_loop().call_later(0.01, finish, registry, "p", history("success", []))
        second = await job.wait(5)
        return first, second

    assert asyncio.run(scenario()) == (False, True)


def test_finished_jobs_are_pruned_beyond_the_retention_count() -> None:
    registry = JobRegistry(keep_finished=2)
    for i in range(5):
        registry.create(str(i), "t", PROMPT)
        finish(registry, str(i), history("success", []))
    assert [job.id for job in registry.all()] == ["3", "4"]


def test_a_failing_listener_does_not_stop_the_others() -> None:
    registry = JobRegistry()
    job = registry.create("p", "t", PROMPT)
    seen: list[str] = []

    def boom(_: object) -> None:
        raise RuntimeError("listener bug")

    job.subscribe(boom)
    registry.observe(lambda j: seen.append(j.state.value))
    feed(registry, "execution_start", {"prompt_id": "p"})
    assert seen == ["running"]
