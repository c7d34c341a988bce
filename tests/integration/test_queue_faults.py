"""The job engine under faults: wake-ups never lost, prompts removed behind our back, job ids private."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult
from test_jobs import empty_image, gen_args, our_jobs, recorder, text, wait_for

from testbed import comfy_api
from testbed.mcp_client import WAYS, connect
from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio

CALLS = 300


def finished_at(entry: dict[str, Any]) -> float:
    """When ComfyUI says the prompt finished (its execution_success message), in epoch seconds."""
    for event, data in entry["status"]["messages"]:
        if event == "execution_success":
            return float(data["timestamp"]) / 1000
    raise AssertionError(f"no execution_success in {entry['status']}")


@pytest.mark.parametrize("way", WAYS)
async def test_300_model_free_calls_with_progress_all_return_their_finished_job(
    comfy: ComfyServer, way: str
) -> None:
    """No wake-up is lost: every call comes back with its job succeeded, after ComfyUI recorded its end.
    How soon after (the 1 s bound this test once asserted) is a speed figure: bench/overhead.py prints
    it per way ("after end" median and max)."""
    returned: dict[str, float] = {}
    async with connect(way, comfy.url) as client:
        for _ in range(CALLS):
            seen, on_progress = recorder()
            result = await client.call_tool(
                "debug_run_workflow", {"workflow": empty_image()}, progress_callback=on_progress
            )
            at = time.time()
            assert not result.is_error, text(result)
            data = result.structured_content
            assert data is not None and data["state"] == "succeeded", data
            (prompt_id,) = data["prompt_ids"]  # ComfyUI's id of the job's one prompt
            returned[prompt_id] = at
    assert len(returned) == CALLS  # one prompt per call, none shared
    early = {}
    for prompt_id, at in returned.items():
        entry = comfy_api.history(comfy.url, prompt_id)
        assert entry is not None and entry["status"]["status_str"] == "success"
        if at < finished_at(entry):  # one clock (same machine); ComfyUI's stamps are whole ms, floored
            early[prompt_id] = round(finished_at(entry) - at, 3)
    assert not early, f"{len(early)}/{CALLS} calls returned before their job ended: {early}"


async def test_a_queued_job_whose_prompt_is_deleted_through_comfyuis_api_ends_cancelled_with_why(
    comfy: ComfyServer,
) -> None:
    async with connect("streamable-2025", comfy.url) as a, connect("streamable-2026", comfy.url) as b:
        results: dict[str, CallToolResult] = {}

        async def call(name: str, client: Client, args: dict[str, Any]) -> None:
            results[name] = await client.call_tool("generate_image", args)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "long", a, gen_args(steps=60, size=128))

            async def long_running() -> bool:
                return bool((await our_jobs(a))["running"])

            await wait_for(long_running)
            tg.start_soon(call, "second", a, gen_args(steps=2))

            def pending() -> list[str]:
                return [str(item[1]) for item in comfy_api.queue(comfy.url)["queue_pending"]]

            async def one_pending() -> bool:
                return len(pending()) == 1

            await wait_for(one_pending)
            (second_id,) = pending()  # ComfyUI's prompt id; the job's own id is the handle
            (queued,) = (await our_jobs(a))["pending"]
            assert queued["prompt_id"] == second_id
            second_job = queued["job_id"]
            async with aiohttp.ClientSession() as http:  # someone else, through ComfyUI's own API
                reply = await http.post(f"{comfy.url}/queue", json={"delete": [second_id]})
                assert reply.status == 200

            async def second_returned() -> bool:
                return "second" in results

            await wait_for(second_returned)
            long_id = (await our_jobs(a))["running"][0]["job_id"]
            await a.call_tool("cancel_job", {"job_id": long_id})
        second = results["second"]
        assert second.is_error
        assert "cancelled" in text(second) and "removed from ComfyUI's queue" in text(second)
        job = await b.call_tool("get_job", {"job_id": second_job})
        assert job.is_error and "removed from ComfyUI's queue" in text(job)
        assert comfy_api.history(comfy.url, second_id) is None  # it never ran


async def test_no_client_sees_another_clients_job_ids_yet_an_id_still_reaches_its_job(
    comfy: ComfyServer,
) -> None:
    async with (
        connect("streamable-2025", comfy.url) as owner,
        connect("sse", comfy.url) as other_session,
        connect("streamable-2026", comfy.url) as stateless,
    ):
        results: list[CallToolResult] = []
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                results.append(await owner.call_tool("generate_image", gen_args(steps=60, size=128)))

            tg.start_soon(call)

            async def running() -> bool:
                return bool((await our_jobs(owner))["running"])

            await wait_for(running)
            (mine,) = (await our_jobs(owner))["running"]
            job_id = mine["job_id"]
            for client in (other_session, stateless):
                status = await client.call_tool("get_queue_status", {})
                assert job_id not in json.dumps(status.structured_content)
                (theirs,) = (await our_jobs(client))["running"]
                assert theirs["mine"] is False and theirs["tool"] == "generate_image"
                unknown = await client.call_tool("get_job", {"job_id": "no-such-job"})
                assert unknown.is_error and job_id not in text(unknown)
            assert mine["mine"] is True and mine["prompt_id"] != job_id  # ComfyUI's id, not the handle
            # Whoever holds the id (here a stateless client) can still read and cancel the job.
            seen = await stateless.call_tool("get_job", {"job_id": job_id})
            assert not seen.is_error and job_id in text(seen)
            await stateless.call_tool("cancel_job", {"job_id": job_id})
        (result,) = results
        assert result.is_error and "cancelled" in text(result)
