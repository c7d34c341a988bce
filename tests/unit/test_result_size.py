"""A job's result fits in one message a client reads (1 MiB): past that, files are counted, not listed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mcp.types import ResourceLink

from mcp_bridge.comfyui.artifacts import Artifact
from mcp_bridge.delivery.result import RESULT_MAX_BYTES
from mcp_bridge.engine.jobs import Job, JobState
from mcp_bridge.tools.results import present_job
from tests.unit.fake_comfy import fake_services

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def finished_job(files: int) -> Job:
    """A succeeded job of ``files`` outputs whose files are gone (no previews: links and entries only)."""
    job = Job("local.0", "many_outputs", {}, prompt_ids=["p"], state=JobState.SUCCEEDED, finished=time.time())
    sub = "mcp/a-long-subfolder-name-as-a-published-workflow-may-give"
    job.artifacts = [
        Artifact(str(n), "image", f"many_outputs_{n:05}_.png", sub, "output", "image/png")
        for n in range(files)
    ]
    job.meta = {"seed": 5}
    return job


async def test_a_result_over_a_mebibyte_lists_the_first_files_and_counts_the_rest(tmp_path: Path) -> None:
    async with fake_services(tmp_path) as services:
        result = await present_job(services, finished_job(2000))
    size = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
    assert size <= RESULT_MAX_BYTES < 1024 * 1024
    data = result.structured_content
    assert data is not None and not result.is_error
    listed = data["images"]
    assert 100 < len(listed) < 2000 and data["files_omitted"] == 2000 - len(listed)
    assert [f["filename"] for f in listed] == [f"many_outputs_{n:05}_.png" for n in range(len(listed))]
    links = [str(b.uri) for b in result.content if isinstance(b, ResourceLink)]
    assert links == [f["uri"] for f in listed]
    summary = result.content[0].text  # type: ignore[union-attr]
    assert summary.startswith("many_outputs: 2000 image(s)") and f"and {2000 - len(listed)} more" in summary
    assert data["seed"] == 5 and data["arguments"] == {"seed": 5}
    assert len(json.dumps(data)) < RESULT_MAX_BYTES


async def test_a_result_that_fits_lists_every_file(tmp_path: Path) -> None:
    async with fake_services(tmp_path) as services:
        result = await present_job(services, finished_job(20))
    data = result.structured_content
    assert data is not None and len(data["images"]) == 20 and "files_omitted" not in data
