"""What ``tools/list`` costs the assistant: bytes per profile and per tool, as a real ComfyUI answers it.

One ComfyUI per profile (``tool_profile`` set by its environment variable), a raw 2025-11-25 session,
one ``tools/list``; bytes are the tools array as compact JSON (what the server sends, without the
JSON-RPC envelope) and the whole HTTP body. Prints a table per profile, the largest tools first, with
each tool's description, input-schema and output-schema bytes. ``--tokens`` divides by 4 for a rough
token count. Asserts nothing.

    python bench/toollist.py [--profiles full,core,compact] [--version 0.3.75]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.raw_mcp import message, open_session, session_headers  # noqa: E402
from testbed.server import LATEST, VERSIONS, ComfyServer  # noqa: E402

PROFILES = ("full", "core", "compact")


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def listed(url: str) -> tuple[list[dict[str, Any]], int]:
    """The tools of one ``tools/list`` (every page) and the HTTP body bytes it took."""
    tools: list[dict[str, Any]] = []
    body_bytes = 0
    cursor: str | None = None
    async with aiohttp.ClientSession() as http:
        session_id = await open_session(http, url)
        for page in range(1, 100):
            params = {"cursor": cursor} if cursor else {}
            body = json.dumps(message("tools/list", params, id=page))
            async with http.post(url + "/mcp", data=body, headers=session_headers(session_id)) as resp:
                raw = await resp.read()
            body_bytes += len(raw)
            text = raw.decode()
            if text.startswith(("event:", "data:", "id:")):  # an SSE answer: its data line
                text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
            result = json.loads(text)["result"]
            tools += result["tools"]
            cursor = result.get("nextCursor")
            if not cursor:
                break
    return tools, body_bytes


def table(profile: str, tools: list[dict[str, Any]], body_bytes: int) -> list[str]:
    total = size(tools)
    lines = [
        f"{profile}: {len(tools)} tools, {total} bytes ({total / 1024:.1f} KiB; HTTP body {body_bytes})",
        "| tool | bytes | description | inputSchema | outputSchema | other |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for tool in sorted(tools, key=size, reverse=True):
        parts = [
            size(tool.get(key, "")) if key in tool else 0
            for key in ("description", "inputSchema", "outputSchema")
        ]
        lines.append(
            f"| {tool['name']} | {size(tool)} | {' | '.join(map(str, parts))} | {size(tool) - sum(parts)} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--version", default=LATEST, choices=VERSIONS)
    args = parser.parse_args()
    summary = []
    for profile in args.profiles.split(","):
        with ComfyServer(args.version, env={"COMFYUI_MCP_TOOL_PROFILE": profile}) as comfy:
            tools, body_bytes = asyncio.run(listed(comfy.url))
        print("\n".join(table(profile, tools, body_bytes)) + "\n", flush=True)
        summary.append(f"| {profile} | {len(tools)} | {size(tools)} | {size(tools) / 1024:.1f} |")
    print("| profile | tools | bytes | KiB |\n|---|---:|---:|---:|\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
