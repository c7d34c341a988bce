"""Following jobs: wake-ups are never lost, queue positions cost O(1) notifications per job."""

from __future__ import annotations

import asyncio
from typing import cast

from mcp_bridge.comfyui.backend import ComfyBackend
from mcp_bridge.engine.jobs import JobRegistry, JobState
from mcp_bridge.engine.runner import JobRunner
from tests.unit.comfy_events import feed, finish

PROMPT = {"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {}}}
SUCCESS = {"status": {"status_str": "success", "completed": True, "messages": []}, "outputs": {}}


class FakeQueue:
    """ComfyUI's queue as the runner sees it: prompts pending in order, one running, a history."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.running: list[str] = []
        self.done: set[str] = set()
        self.views = 0

    def view(self) -> tuple[list[str], list[str]]:
        self.views += 1
        return list(self.running), list(self.pending)

    def has_run(self, prompt_id: str) -> bool:
        return prompt_id in self.done

    def unwatch(self, prompt_id: str) -> None:
        pass


def engine() -> tuple[FakeQueue, JobRegistry, JobRunner]:
    queue = FakeQueue()
    registry = JobRegistry(queue_view=queue.view)
    return queue, registry, JobRunner(cast(ComfyBackend, queue), registry)


async def turns(count: int = 20) -> None:
    """Let the event loop run ``count`` times (every ready callback and task gets its turn)."""
    for _ in range(count):
        await asyncio.sleep(0)


def test_a_job_that_finishes_while_its_progress_is_being_sent_wakes_its_follower() -> None:
    async def scenario() -> bool:
        _, registry, runner = engine()
        job = registry.create("p", "t", PROMPT)

        async def report(value: float, total: float, message: str) -> None:
            await asyncio.sleep(0)  # writing to the client's stream yields to the loop...
            finish(registry, "p", SUCCESS)  # ...and the (2 ms) job finishes meanwhile

        follower = asyncio.create_task(runner.follow(job, report, timeout=60))
        await turns()
        returned = follower.done() and follower.result()
        follower.cancel()
        return bool(returned)

    assert asyncio.run(scenario()), "the follower slept through the job's end (lost wake-up)"


def test_queued_jobs_hear_of_their_position_a_bounded_number_of_times() -> None:
    jobs_count = 40

    async def scenario() -> tuple[int, list[str]]:
        queue, registry, runner = engine()
        sent: list[str] = []

        async def report(value: float, total: float, message: str) -> None:
            sent.append(message)

        followers = []
        for i in range(jobs_count):
            job = registry.create(f"p{i}", "t", PROMPT)
            queue.pending.append(job.id)
            registry.mark_on_queue(job.id)
            registry.refresh_positions()
            followers.append(asyncio.create_task(runner.follow(job, report, timeout=60)))
            await turns(2)
        for i in range(jobs_count):  # ComfyUI runs them one by one; every step moves every waiting job
            queue.running = [queue.pending.pop(0)]
            feed(registry, "status", {})
            await turns(3)
            queue.running, _ = [], queue.done.add(f"p{i}")
            feed(registry, "status", {})
            finish(registry, f"p{i}", SUCCESS)
            await turns(3)
        await asyncio.wait_for(asyncio.gather(*followers), 5)
        return len(sent), [m for m in sent if "position" in m]

    total, positions = asyncio.run(scenario())
    # Telling every waiting job after every change would be ~n²/2 = 800 position notices here.
    assert len(positions) <= 2 * jobs_count, f"{len(positions)} position notices for {jobs_count} jobs"
    assert total <= 4 * jobs_count


def test_a_held_back_position_is_sent_once_the_interval_is_over() -> None:
    async def scenario() -> list[str]:
        queue, registry, runner = engine()
        job = registry.create("p", "t", PROMPT)
        queue.pending = ["a", "b", "c", "p"]
        registry.mark_on_queue("p")
        registry.refresh_positions()
        told: list[str] = []
        first = asyncio.Event()
        at_front = asyncio.Event()

        async def report(value: float, total: float, message: str) -> None:
            told.append(message)
            first.set()
            if "position 1 " in message:
                at_front.set()

        follower = asyncio.create_task(runner.follow(job, report, timeout=60, position_interval=0.05))
        await asyncio.wait_for(first.wait(), 5)
        for gone in ("a", "b", "c"):  # three moves in a burst: coalesced into one notice
            queue.pending.remove(gone)
            feed(registry, "status", {})
            await turns()
        await asyncio.wait_for(at_front.wait(), 5)
        follower.cancel()
        return told

    told = asyncio.run(scenario())
    assert [m for m in told if "position" in m] == [
        "queued: position 4 in ComfyUI's queue",
        "queued: position 1 in ComfyUI's queue",
    ]


def test_many_queue_changes_in_one_turn_of_the_loop_read_the_queue_once() -> None:
    async def scenario() -> int:
        queue, registry, _ = engine()
        registry.create("p", "t", PROMPT)
        queue.pending = ["p"]
        for _ in range(50):
            feed(registry, "status", {})
        await turns(2)
        return queue.views

    assert asyncio.run(scenario()) == 1


def test_a_queued_job_whose_prompt_someone_removed_is_cancelled_with_the_reason() -> None:
    queue, registry, _ = engine()
    removed, ran, submitting = (registry.create(p, "t", PROMPT) for p in ("removed", "ran", "submitting"))
    queue.pending = ["removed", "ran"]
    registry.mark_on_queue("removed")
    registry.mark_on_queue("ran")
    registry.refresh_positions()
    assert removed.queue_position == 1
    # ComfyUI ran "ran" (its history exists, our completion hook is on its way), someone deleted
    # "removed", and "submitting" is still being validated (not on the queue yet).
    queue.pending, queue.done = [], {"ran"}
    feed(registry, "status", {})
    assert removed.state is JobState.CANCELLED
    assert removed.error is not None and "removed from ComfyUI's queue" in removed.error["message"]
    assert "removed from ComfyUI's queue" in removed.message()
    assert ran.state is JobState.QUEUED and submitting.state is JobState.QUEUED


def test_every_sampler_step_reaches_a_client_slower_than_the_sampler() -> None:
    async def scenario() -> list[str]:
        _, registry, runner = engine()
        job = registry.create("p", "t", PROMPT)
        feed(registry, "execution_start", {"prompt_id": "p"})
        messages: list[str] = []

        async def report(value: float, total: float, message: str) -> None:
            messages.append(message)
            await asyncio.sleep(0.01)  # the client's stream is slow; the sampler runs on meanwhile

        follower = asyncio.create_task(runner.follow(job, report, timeout=60))
        await turns()
        for step in range(1, 5):  # four steps within one report's time
            feed(registry, "progress", {"prompt_id": "p", "node": "1", "value": step, "max": 4})
        feed(registry, "executing", {"prompt_id": "p", "node": None})
        finish(registry, "p", SUCCESS)
        await asyncio.wait_for(follower, 5)
        return messages

    steps = [m for m in asyncio.run(scenario()) if "step" in m]
    assert steps == [f"running EmptyImage: step {n}/4" for n in range(1, 5)]


def test_a_follower_resumes_in_the_first_turn_of_the_loop_after_its_job_ends() -> None:
    async def scenario() -> list[bool]:
        _, registry, runner = engine()
        job = registry.create("p", "t", PROMPT)
        follower = asyncio.create_task(runner.follow(job, None, timeout=60))
        await turns()
        loop = asyncio.get_running_loop()
        resumed: list[bool] = []  # whether the follower had returned one turn after the job's end
        registry.observe(
            lambda j: j.state.finished and loop.call_soon(lambda: resumed.append(follower.done()))
        )
        finish(registry, "p", SUCCESS)
        assert await follower
        await turns()
        return resumed

    assert asyncio.run(scenario()) == [True]
