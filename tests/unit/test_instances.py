"""Job ids and output links name their instance; a job is one or more prompts, never its prompt id."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from mcp_bridge import config
from mcp_bridge.comfyui.backend import ComfyBackend, PromptRejected
from mcp_bridge.engine import ids
from mcp_bridge.engine.jobs import JobRegistry, JobState
from mcp_bridge.engine.runner import JobRunner
from tests.unit.comfy_events import feed, finish

PROMPT = {"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {}}}
SUCCESS = {"status": {"status_str": "success", "completed": True, "messages": []}, "outputs": {}}
FAILURE = {"status": {"status_str": "error", "completed": False, "messages": []}, "outputs": {}}


def test_a_job_id_names_its_instance_and_other_shapes_name_none() -> None:
    job_id = ids.new_job_id("gpu1")
    assert ids.parse_job_id(f"  {job_id} ") == ids.Handle("gpu1", job_id)
    older = "3f2a9c1e-0b7d-4e55-9a61-2b8f0c6d7e10"  # a bare uuid: this instance's, looked up as given
    for other in (
        older,
        "gpu1." + older.upper(),
        "GPU1." + older,
        "a/b." + older,
        "x" * 17 + "." + older,
        "",
    ):
        assert ids.parse_job_id(other).instance is None, other


def test_output_links_name_their_instance_and_the_older_form_is_local() -> None:
    assert ids.output_link("b", "mcp/x.png") == "comfy://b/output/mcp/x.png"
    assert ids.parse_output_link("comfy://b/output/mcp/x.png") == ("b", "mcp/x.png")
    assert ids.parse_output_link("comfy://output/mcp/x.png") == (None, "mcp/x.png")
    assert ids.parse_output_link("comfy://output/output/x.png") == (
        None,
        "output/x.png",
    )  # not instance "output"
    for not_a_link in (
        "comfy://B/output/x.png",
        "comfy://b/input/x.png",
        "comfy://b/output/",
        "http://b/output/x",
    ):
        assert ids.parse_output_link(not_a_link) is None, not_a_link


def test_the_derived_instance_id_is_short_stable_and_differs_per_port() -> None:
    first = ids.derive_instance_id("Box", 8188)
    assert first == ids.derive_instance_id("box", 8188) and len(first) == 6 and ids.valid_instance_id(first)
    assert first != ids.derive_instance_id("box", 8189)
    assert ids.instance_id("gpu0", 8188) == "gpu0"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"instance_id": "Has-Dash"}, "instance_id"),
        ({"peers": ["b=ftp://x"]}, "peers"),
        ({"peers": ["http://10.0.0.2:8188/mcp"]}, "peers"),
        ({"peer_tokens": ["b"]}, "peer_tokens"),
    ],
)
def test_malformed_instance_settings_are_refused_naming_the_setting(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(config.ConfigError, match=named):
        config.validate(config.from_dict(values))


def test_a_malformed_peer_token_entry_is_refused_without_echoing_it() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.validate(config.from_dict({"peer_tokens": ["s3cr3t-token-value"]}))
    assert "s3cr3t" not in str(caught.value)


class Queue:
    """ComfyUI's queue as the runner reaches it: enqueue, cancel, an optional refusal."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.pending: list[str] = []
        self.cancelled: list[str] = []
        self.refuse_after = refuse_after

    async def enqueue(self, prompt: dict[str, Any], prompt_id: str) -> int:
        if self.refuse_after is not None and len(self.pending) >= self.refuse_after:
            raise PromptRejected("node 2: no")
        self.pending.append(prompt_id)
        return len(self.pending)

    def cancel(self, prompt_id: str) -> str:
        if prompt_id in self.pending:
            self.pending.remove(prompt_id)
            self.cancelled.append(prompt_id)
            return "removed"
        return "not_found"

    def view(self) -> tuple[list[str], list[str]]:
        return [], list(self.pending)

    def has_run(self, prompt_id: str) -> bool:
        return False

    def unwatch(self, prompt_id: str) -> None:
        pass


def engine(queue: Queue) -> tuple[JobRegistry, JobRunner]:
    registry = JobRegistry(queue_view=queue.view)
    return registry, JobRunner(cast(ComfyBackend, queue), registry, instance_id="gpu1")


def test_a_job_of_two_prompts_runs_both_and_its_id_is_no_prompt_id() -> None:
    async def scenario() -> None:
        queue = Queue()
        registry, runner = engine(queue)
        job = await runner.submit("t", [PROMPT, PROMPT])
        first, second = job.prompt_ids
        assert ids.parse_job_id(job.id).instance == "gpu1" and job.id not in job.prompt_ids
        assert registry.of_prompt(second) is job and registry.get(first) is None
        feed(registry, "execution_start", {"prompt_id": first})
        queue.pending.remove(first)
        finish(registry, first, SUCCESS)
        assert job.state is JobState.RUNNING and job.fraction() == 0.5
        feed(registry, "execution_start", {"prompt_id": second})
        queue.pending.remove(second)
        finish(registry, second, SUCCESS)
        assert job.state is JobState.SUCCEEDED

    asyncio.run(scenario())


def test_a_failed_prompt_fails_its_job_and_drops_the_prompts_after_it() -> None:
    async def scenario() -> None:
        queue = Queue()
        registry, runner = engine(queue)
        job = await runner.submit("t", [PROMPT, PROMPT, PROMPT])
        first, *rest = job.prompt_ids
        feed(registry, "execution_start", {"prompt_id": first})
        queue.pending.remove(first)
        finish(registry, first, FAILURE)
        assert job.state is JobState.FAILED and queue.cancelled == rest and not queue.pending

    asyncio.run(scenario())


def test_cancelling_a_queued_job_of_several_prompts_removes_them_all() -> None:
    async def scenario() -> None:
        queue = Queue()
        _, runner = engine(queue)
        job = await runner.submit("t", [PROMPT, PROMPT])
        assert runner.cancel(job) == "removed" and job.state is JobState.CANCELLED and not queue.pending

    asyncio.run(scenario())


def test_a_refused_second_prompt_leaves_nothing_of_the_job_queued() -> None:
    async def scenario() -> None:
        queue = Queue(refuse_after=1)
        registry, runner = engine(queue)
        with pytest.raises(PromptRejected):
            await runner.submit("t", [PROMPT, PROMPT])
        assert not queue.pending and not registry.all()

    asyncio.run(scenario())
