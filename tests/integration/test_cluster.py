"""Two real ComfyUI 0.3.75 instances behind HAProxy on loopback (issue 16), one start of each process.

Sessions stick, stateless calls spread, a job of one instance is reached through the other (wait,
read, cancel, its output link), and a stopped instance is a clear error while new calls go on.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp.types import CallToolResult, ResourceLink

from testbed.cluster import Cluster, HaproxyMissing, haproxy_version
from testbed.mcp_client import connect

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    try:
        version = haproxy_version()
    except HaproxyMissing as exc:
        pytest.skip(str(exc))
    # call_wait_s 1: a generation call hands back its job at once, as a long one would.
    env = {"COMFYUI_MCP_CALL_WAIT_S": "1", "COMFYUI_MCP_PEER_TIMEOUT_S": "5"}
    with Cluster(env=env).running() as running:
        print(version)
        yield running


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def quick(**extra: Any) -> dict[str, Any]:
    return {
        "prompt": "a fox",
        "width": 64,
        "height": 64,
        "steps": 1,
        "seed": random.randrange(2**40),
        **extra,
    }


async def until_done(client: Any, job_id: str, on_progress: Any = None) -> CallToolResult:
    """wait_job until the job ended (calls wait at most 1 s on this cluster)."""
    with anyio.fail_after(300):
        while True:
            arguments = {"job_id": job_id, "timeout_s": 30}
            result: CallToolResult = await client.call_tool(
                "wait_job", arguments, progress_callback=on_progress
            )
            if result.is_error or result.structured_content["state"] not in ("queued", "running"):  # type: ignore[index]
                return result


SLOW = {"steps": 150, "width": 256, "height": 256, "sampler": "euler"}  # still going when the test acts on it


async def owner_of(client: Any, arguments: dict[str, Any]) -> tuple[str, CallToolResult]:
    result = await client.call_tool("generate_image", arguments)
    assert not result.is_error, text(result)
    job_id = result.structured_content["job_id"]
    return job_id.partition(".")[0], result


async def test_a_session_stays_on_one_instance_and_stateless_calls_use_both(cluster: Cluster) -> None:
    for way in ("streamable-2025", "sse"):
        async with connect(way, cluster.url) as client:
            owners = {(await owner_of(client, quick()))[0] for _ in range(4)}
        assert len(owners) == 1, (way, owners)
    async with connect("streamable-2026", cluster.url) as client:
        owners_2026 = [(await owner_of(client, quick()))[0] for _ in range(6)]
        infos = [await client.call_tool("get_server_info", {}) for _ in range(4)]
    assert set(owners_2026) == {"a", "b"}, owners_2026
    assert {info.structured_content["instance_id"] for info in infos} == {"a", "b"}  # type: ignore[index]
    (peer,) = infos[0].structured_content["peers"]  # type: ignore[index]
    assert peer["answers"] is True and isinstance(peer["queue_length"], int)


async def test_a_job_of_a_is_waited_on_read_and_cancelled_through_b(cluster: Cluster) -> None:
    a, b = cluster.instances["a"], cluster.instances["b"]
    async with connect("streamable-2026", a.url) as on_a:
        started = await on_a.call_tool("generate_image", quick())
        slow = await on_a.call_tool("generate_image", quick(**SLOW))
    job_id, slow_id = started.structured_content["job_id"], slow.structured_content["job_id"]  # type: ignore[index]
    assert job_id.startswith("a.") and slow_id.startswith("a.")
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with connect("streamable-2025", b.url) as on_b:
        seen = await on_b.call_tool("get_job", {"job_id": slow_id})
        arguments = {"job_id": slow_id, "timeout_s": 30}  # one round: calls wait 1 s here
        still = await on_b.call_tool("wait_job", arguments, progress_callback=on_progress)
        cancelled = await on_b.call_tool("cancel_job", {"job_id": slow_id})
        waited = await until_done(on_b, job_id)
        (link,) = [block for block in waited.content if isinstance(block, ResourceLink)]
        read = await on_b.read_resource(str(link.uri))
    assert not seen.is_error and seen.structured_content["state"] in ("queued", "running"), text(seen)  # type: ignore[index]
    assert cancelled.structured_content["state"] == "cancelled", text(cancelled)  # type: ignore[index]
    assert not waited.is_error and waited.structured_content["state"] == "succeeded", text(waited)  # type: ignore[index]
    assert still.structured_content["state"] in ("queued", "running"), text(still)  # type: ignore[index]
    assert progress, "no progress relayed from the owner"
    assert str(link.uri).startswith("comfy://a/output/")
    blob = read.contents[0]
    assert base64.b64decode(blob.blob).startswith(b"\x89PNG")  # type: ignore[union-attr]
    assert list(a.output_dir.rglob(link.name)) and not list(b.output_dir.rglob(link.name))


async def test_a_stopped_instance_is_a_clear_error_from_the_other_and_new_calls_go_on(
    cluster: Cluster,
) -> None:
    a, b = cluster.instances["a"], cluster.instances["b"]
    async with connect("streamable-2026", b.url) as on_b:
        handle = await on_b.call_tool("generate_image", quick(**SLOW))
    job_id = handle.structured_content["job_id"]  # type: ignore[index]
    assert b.process is not None
    b.process.kill()
    b.process.wait(30)
    async with connect("streamable-2026", a.url) as on_a:
        with anyio.fail_after(60):  # bounded: peer_timeout_s is 5 s here
            waited = await on_a.call_tool("wait_job", {"job_id": job_id, "timeout_s": 30})
    assert waited.is_error and "peer 'b'" in text(waited), text(waited)
    async with connect("streamable-2026", cluster.url) as client:
        owners = [(await owner_of(client, quick()))[0] for _ in range(4)]
    assert owners == ["a"] * 4
