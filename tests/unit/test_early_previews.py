"""A result's preview is made from the output node's ``executed`` event on, not after the prompt ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp.types import ImageContent
from PIL import Image

from mcp_bridge.comfyui.artifacts import Artifact
from mcp_bridge.engine.jobs import Job, JobState
from mcp_bridge.media import artifacts
from mcp_bridge.tools.results import present_job
from mcp_bridge.tools.services import Services
from tests.unit.comfy_events import feed, finish
from tests.unit.fake_comfy import fake_services

pytestmark = pytest.mark.anyio

PROMPT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "early"}},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def spy_on_previews(
    monkeypatch: pytest.MonkeyPatch, fail_first: bool = False
) -> tuple[list[str], asyncio.Event]:
    """Record every preview made (in worker threads); the event is set on the loop after the first."""
    loop = asyncio.get_running_loop()
    made: list[str] = []
    first = asyncio.Event()
    real = artifacts.preview

    def spy(artifact: Artifact, path: Path, **kwargs: Any) -> artifacts.Preview | None:
        made.append(artifact.filename)
        loop.call_soon_threadsafe(first.set)
        if fail_first and len(made) == 1:
            raise RuntimeError("decoder broke")
        return real(artifact, path, **kwargs)

    monkeypatch.setattr(artifacts, "preview", spy)
    return made, first


async def run_to_executed(services: Services, root: Path, name: str = "early") -> tuple[Job, dict[str, Any]]:
    """Queue a job and play ComfyUI's events up to its SaveImage node's ``executed`` (file written)."""
    job = await services.runner.submit("debug_run_workflow", PROMPT)
    prompt_id = job.prompt_ids[0]
    record = {"filename": f"{name}_00001_.png", "subfolder": "", "type": "output"}
    Image.new("RGB", (512, 512), (200, 40, 90)).save(root / "output" / record["filename"])
    feed(services.registry, "execution_start", {"prompt_id": prompt_id, "timestamp": 1})
    feed(services.registry, "executing", {"node": "9", "display_node": "9", "prompt_id": prompt_id})
    output = {"images": [record]}
    feed(
        services.registry,
        "executed",
        {"node": "9", "display_node": "9", "output": output, "prompt_id": prompt_id},
    )
    return job, {"status": {"status_str": "success", "messages": []}, "outputs": {"9": output}}


async def test_the_preview_is_made_when_the_output_node_reports_its_file_before_the_prompt_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, first = spy_on_previews(monkeypatch)
    async with fake_services(tmp_path, hold=True) as services:
        job, entry = await run_to_executed(services, tmp_path)
        # The prompt has not ended (no history entry yet): the preview is under way all the same.
        await asyncio.wait_for(first.wait(), 10)  # without early previews: nothing starts, times out
        assert job.state is JobState.RUNNING and made == ["early_00001_.png"]
        finish(services.registry, job.prompt_ids[0], entry)
        result = await present_job(services, job)
    previews = [block for block in result.content if isinstance(block, ImageContent)]
    assert len(previews) == 1 and previews[0].mime_type == "image/webp"
    assert made == ["early_00001_.png"]  # the result used it: not encoded a second time
    files = (result.structured_content or {})["images"]
    assert (files[0]["width"], files[0]["height"]) == (512, 512)


async def test_an_early_preview_that_failed_is_made_again_for_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, first = spy_on_previews(monkeypatch, fail_first=True)
    async with fake_services(tmp_path, hold=True) as services:
        job, entry = await run_to_executed(services, tmp_path)
        await asyncio.wait_for(first.wait(), 10)
        finish(services.registry, job.prompt_ids[0], entry)
        result = await present_job(services, job)
    assert made == ["early_00001_.png", "early_00001_.png"]
    assert [block.mime_type for block in result.content if isinstance(block, ImageContent)] == ["image/webp"]


async def test_early_previews_are_dropped_with_a_failed_job_and_bounded_per_job_count(tmp_path: Path) -> None:
    from mcp_bridge.delivery.previews import EarlyPreviews

    async with fake_services(tmp_path, hold=True) as services:
        kept = EarlyPreviews(services.comfy, keep_jobs=2).attach(services.registry)
        failed, _ = await run_to_executed(services, tmp_path, "failed")
        assert len(kept) == 1
        error = {"prompt_id": failed.prompt_ids[0], "node_id": "9", "exception_message": "disk full"}
        feed(services.registry, "execution_error", error)
        finish(services.registry, failed.prompt_ids[0], {"status": {"status_str": "error", "messages": []}})
        assert failed.state is JobState.FAILED and len(kept) == 0
        for name in ("a", "b", "c"):  # results nobody asked for: only the newest two are kept
            job, entry = await run_to_executed(services, tmp_path, name)
            finish(services.registry, job.prompt_ids[0], entry)
        assert len(kept) == 2 and kept.take(job.id)
