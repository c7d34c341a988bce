"""What the bridge costs beside a raw HTTP client of ComfyUI, side by side on one ComfyUI.

Paths, interleaved call by call in a shuffled order each round (drift hits all alike):
- raw: ``POST /prompt``, wait on ComfyUI's WebSocket for the prompt's end, ``GET /history``;
- raw + view: the same plus ``GET /view`` of the image (the image in the client's hands);
- each MCP way in (legacy SSE, Streamable HTTP 2025 session, 2026 stateless), calling
  ``debug_run_workflow`` with the same workflow (result with its WebP preview), with and without a
  progress callback.

Workloads: model-free (EmptyImage 64² -> SaveImage), tiny txt2img 64² (2 steps), txt2img 512²; big
results (issue 25): upscale-1024/-2048/-4096 (the tiny x4 ESRGAN on a fresh random image of a quarter
the side, written to each ComfyUI's input folder before the call, so nothing is cached) and txt2img-1024.
Overhead = the call's wall time minus ComfyUI's own execution (its history's ``execution_start`` to
``execution_success``, ms stamps); "after end" = the moment the call returned minus
``execution_success`` (one clock: the same machine). Prints medians, p90, max and the ratios of the
medians and p90s to raw + view per workload. Every workflow differs (no cache hits). Asserts nothing;
the bound we hold ourselves to: every MCP call returns within 1 s of its job's end ("after end max"),
once asserted by tests/integration/test_queue_faults.py (a speed goal, so measured here).

    python bench/overhead.py [--runs 40[,20,8]] [--workloads model-free,txt2img-64,txt2img-512]
    python bench/overhead.py --workloads upscale-1024,upscale-2048 --paths "raw + view,streamable-2026"
    python -m bench.overhead ... [--against /path/to/other/checkout]   # before vs after, interleaved
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import execution, quantiles, stamps  # noqa: E402
from testbed.mcp_client import WAYS, connect  # noqa: E402
from testbed.sample_workflows import empty_image, txt2img, upscale  # noqa: E402
from testbed.server import EXTENSION_DIR_NAME, LATEST, VERSIONS, ComfyServer  # noqa: E402

INPUT_DIRS: list[Path] = []  # every benched ComfyUI's input folder


def fresh_upscale(side: int) -> dict[str, Any]:
    """The x4 upscale of a new random image of ``side / 4`` (in every ComfyUI's input folder)."""
    name = f"bench-up-{uuid.uuid4().hex[:12]}.png"
    pixels = np.random.default_rng().integers(0, 256, (side // 4, side // 4, 3), dtype=np.uint8)
    for folder in INPUT_DIRS:
        Image.fromarray(pixels).save(folder / name, compress_level=1)
    return upscale(name, "bench-up")


WORKLOADS: dict[str, Callable[[], dict[str, Any]]] = {
    "model-free": lambda: empty_image("bench"),
    "txt2img-64": lambda: txt2img(random.randrange(2**32), 64),
    "txt2img-512": lambda: txt2img(random.randrange(2**32), 512),
    "txt2img-1024": lambda: txt2img(random.randrange(2**32), 1024),
    "upscale-1024": lambda: fresh_upscale(1024),
    "upscale-2048": lambda: fresh_upscale(2048),
    "upscale-4096": lambda: fresh_upscale(4096),
}
RAW, VIEW = "raw", "raw + view"
WARMUP = 3


@dataclass
class Sample:
    overhead: float  # wall minus ComfyUI's execution, s
    after_end: float  # return minus execution_success, s
    progress: int = 0  # progress notifications the call received
    wall: float = 0.0  # the call's whole time, s: the result in hand


@dataclass
class Raw:
    """One raw HTTP + WebSocket client of ComfyUI; a reader task notes each prompt's end."""

    http: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    url: str
    client_id: str
    ended: dict[str, asyncio.Event] = field(default_factory=dict)

    def event(self, prompt_id: str) -> asyncio.Event:
        return self.ended.setdefault(prompt_id, asyncio.Event())

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            data = event.get("data") or {}
            if event.get("type") == "executing" and data.get("node") is None and data.get("prompt_id"):
                self.event(data["prompt_id"]).set()

    async def call(self, workflow: dict[str, Any], fetch: bool) -> Sample:
        t0 = time.perf_counter()
        body = {"prompt": workflow, "client_id": self.client_id}
        async with self.http.post(f"{self.url}/prompt", json=body) as resp:
            prompt_id = (await resp.json())["prompt_id"]
        await self.event(prompt_id).wait()
        async with self.http.get(f"{self.url}/history/{prompt_id}") as resp:
            entry = (await resp.json())[prompt_id]
        if fetch:  # what any external bridge needs before it can hand the image on
            image = next(o["images"][0] for o in entry["outputs"].values() if o.get("images"))
            async with self.http.get(f"{self.url}/view", params=image) as resp:
                assert len(await resp.read()) > 0
        wall, returned = time.perf_counter() - t0, time.time()
        del self.ended[prompt_id]
        start, end = stamps(entry)
        return Sample(wall - (end - start), returned - end, wall=wall)


async def mcp_call(
    client: Any, http: aiohttp.ClientSession, url: str, workflow: dict[str, Any], progress: bool
) -> Sample:
    notices = 0

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        nonlocal notices
        notices += 1

    t0 = time.perf_counter()
    result = await client.call_tool(
        "debug_run_workflow", {"workflow": workflow}, progress_callback=on_progress if progress else None
    )
    wall, returned = time.perf_counter() - t0, time.time()
    data = result.structured_content or {}
    assert not result.is_error and data.get("state") == "succeeded", result.content
    assert any(c.type == "image" for c in result.content), "no preview in the result"
    (prompt_id,) = data["prompt_ids"]  # the bridge adds its preview node: the prompt is not `workflow`
    start, end = await execution(http, url, prompt_id)
    return Sample(wall - (end - start), returned - end, notices, wall)


async def open_paths(
    stack: AsyncExitStack, http: aiohttp.ClientSession, label: str, url: str
) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """Every path to one ComfyUI, named ``label: path`` when a label is given."""
    cid = uuid.uuid4().hex
    ws = await stack.enter_async_context(http.ws_connect(f"{url}/ws?clientId={cid}"))
    raw = Raw(http, ws, url, cid)
    reader = asyncio.create_task(raw.read())
    stack.callback(reader.cancel)
    prefix = f"{label}: " if label else ""
    paths: dict[str, Callable[[dict[str, Any]], Any]] = {
        prefix + RAW: lambda w: raw.call(w, fetch=False),
        prefix + VIEW: lambda w: raw.call(w, fetch=True),
    }
    for way in WAYS:
        client = await stack.enter_async_context(connect(way, url))
        for progress in (False, True):
            name = prefix + way + (" +progress" if progress else "")
            paths[name] = lambda w, c=client, p=progress: mcp_call(c, http, url, w, p)
    return paths


async def bench(
    servers: dict[str, str], runs: list[int], workloads: list[str], keep: list[str] | None = None
) -> dict[str, dict[str, list[Sample]]]:
    """``servers``: label -> base URL; every path of every server, interleaved."""
    results: dict[str, dict[str, list[Sample]]] = {}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        paths: dict[str, Callable[[dict[str, Any]], Any]] = {}
        for label, url in servers.items():
            paths.update(await open_paths(stack, http, label, url))
        if keep:
            paths = {name: call for name, call in paths.items() if name.split(": ")[-1] in keep}
        for workload, count in zip(workloads, runs, strict=True):
            make = WORKLOADS[workload]
            times: dict[str, list[Sample]] = {name: [] for name in paths}
            for i in range(WARMUP + count):
                order = list(paths)
                random.shuffle(order)
                for name in order:
                    sample = await paths[name](make())
                    if i >= WARMUP:
                        times[name].append(sample)
            results[workload] = times
            print("\n".join(table(workload, times)) + "\n", flush=True)  # each as soon as it is done
    return results


def table(workload: str, times: dict[str, list[Sample]]) -> list[str]:
    base = next(name for name in times if name.endswith(VIEW))
    base_med, base_p90, _ = quantiles([s.overhead for s in times[base]])
    lines = [
        f"{workload} ({len(times[base])} calls per path) — overhead ms; ratios to '{base}'",
        "| path | median | p90 | max | median ratio | p90 ratio | after end median | after end max | "
        "wall median | progress notices |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, samples in times.items():
        med, p90, top = quantiles([s.overhead for s in samples])
        after_med, _, after_max = quantiles([s.after_end for s in samples])
        notices = sum(s.progress for s in samples) / len(samples)
        wall = quantiles([s.wall for s in samples])[0]
        lines.append(
            f"| {name} | {med * 1000:.1f} | {p90 * 1000:.1f} | {top * 1000:.1f} | {med / base_med:.2f} | "
            f"{p90 / base_p90:.2f} | {after_med * 1000:.1f} | {after_max * 1000:.1f} | {wall * 1000:.0f} | "
            f"{notices:.1f} |"
        )
    return lines


def server(version: str, checkout: Path | None) -> ComfyServer:
    """A ComfyUI with debug tools, its bridge from this tree or from ``checkout``."""
    base_dir = None
    if checkout is not None:
        base_dir = Path(tempfile.mkdtemp(prefix=f"comfy-{version}-against-"))
        (base_dir / "custom_nodes").mkdir()
        (base_dir / "custom_nodes" / EXTENSION_DIR_NAME).symlink_to(checkout.resolve())
    return ComfyServer(version, env={"COMFYUI_MCP_DEBUG_TOOLS": "1"}, base_dir=base_dir)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", default="40", help="measured calls per path: one count, or one per workload (40,20,8)"
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS)
    )
    parser.add_argument("--version", default=LATEST, choices=VERSIONS)
    parser.add_argument(
        "--paths",
        default="",
        help="comma-separated paths to run (default all), e.g. 'raw + view,streamable-2026'",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout of the bridge (e.g. a git worktree of main) on a "
        "second ComfyUI, interleaved with this one: before vs after",
    )
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    runs = [int(n) for n in args.runs.split(",") if n]
    if len(runs) == 1:
        runs *= len(workloads)
    if len(runs) != len(workloads):
        parser.error(f"--runs: one count or one per workload ({len(workloads)})")
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; valid: {', '.join(WORKLOADS)}")
    logging.disable(logging.INFO)  # the SDK client logs every HTTP request at INFO
    with contextlib.ExitStack() as stack:
        this = stack.enter_context(server(args.version, None))
        INPUT_DIRS.append(this.input_dir)
        servers = {"": this.url}
        if args.against:
            other = stack.enter_context(server(args.version, args.against))
            INPUT_DIRS.append(other.input_dir)
            servers = {"after": this.url, "before": other.url}
        print(f"ComfyUI {args.version}, interleaved, shuffled each round", flush=True)
        keep = [p for p in args.paths.split(",") if p] if args.paths else None
        asyncio.run(bench(servers, runs, workloads, keep))


if __name__ == "__main__":
    main()
