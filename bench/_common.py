"""What the benches share: the test bed on the path, ComfyUI's own timings, its process facts, statistics."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, where `testbed` is not
    sys.path.insert(0, str(ROOT))

from testbed.server import ComfyServer  # noqa: E402


async def execution(http: aiohttp.ClientSession, url: str, prompt_id: str) -> tuple[float, float]:
    """When ComfyUI started and ended running a prompt (epoch s), from its history's status stamps."""
    async with http.get(f"{url}/history/{prompt_id}") as resp:
        entry = (await resp.json())[prompt_id]
    return stamps(entry)


async def entry_of(http: aiohttp.ClientSession, url: str, workflow: dict[str, Any]) -> dict[str, Any]:
    """ComfyUI's history entry of the latest prompt that ran ``workflow`` (job ids are not prompt ids)."""
    async with http.get(f"{url}/history", params={"max_items": "8"}) as resp:
        entries = await resp.json()
    for entry in reversed(list(entries.values())):
        ran = {k: v for k, v in entry["prompt"][2].items() if v["class_type"] != "MCPBridgeResultPreview"}
        if ran == workflow:  # the bridge's own preview nodes aside (issue 25)
            return dict(entry)
    raise LookupError("no history entry runs this workflow")


def stamps(entry: dict[str, Any]) -> tuple[float, float]:
    """``(execution_start, execution_success)`` of a history entry, epoch seconds (ms resolution)."""
    found = {name: data.get("timestamp") for name, data in entry["status"]["messages"]}
    return found["execution_start"] / 1000, found["execution_success"] / 1000


def process_facts(server: ComfyServer) -> dict[str, float]:
    """ComfyUI's resident memory (MiB) and the lines in its log so far."""
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return {"rss_mib": rss_kib / 1024, "log_lines": len(server.log_text().splitlines())}


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """Median, p90 and max of ``values``."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(ordered), p90, ordered[-1]
