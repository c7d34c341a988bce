"""Which tools ``tools/list`` shows (the ``tool_profile`` setting), and argument groups said once (issue 25).

- ``full``: every tool. ``core``: the brief's nine, the job tools, get_server_info, and the two routers.
  ``compact`` (small local models): generate_image and the two routers.
- The routers: ``describe_tool`` gives any tool's description and arguments as ``full`` lists them;
  ``run_tool`` calls any tool by name — the same handler, validation, errors, progress and cancellation
  as calling it directly. Its description names every tool the profile does not list. Every tool also
  stays callable by its own name (a job id's "call wait_job" works in every profile).
- Said once: an argument whose whole schema (sampling, the LoRA and ControlNet stacks, ``input_image``,
  ``output_path``, ...) repeats, verbatim and over :data:`SHARED_MIN_BYTES`, an earlier listed tool's
  argument of the same name is listed by its type alone (and ``x-`` keywords such as ``x-mcp-header``);
  the input schema's own description says "As <tool>'s: <arguments>." (the tool's description stays its
  author's). The tools validate with
  their own models, so this changes what is said, never what is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mcp.types import Tool as MCPTool

PROFILES = ("full", "core", "compact")
ROUTERS = ("describe_tool", "run_tool")
BRIEF_TOOLS = (  # the nine tools of the project's brief
    "generate_image img2img upscale_image list_models list_loras list_samplers list_schedulers "
    "list_upscale_models get_queue_status"
).split()
CORE = frozenset({*BRIEF_TOOLS, "get_job", "wait_job", "cancel_job", "get_server_info", *ROUTERS})
COMPACT = frozenset({"generate_image", *ROUTERS})
SHARED_MIN_BYTES = 60  # a shorter schema costs less than naming it
SUMMARY_CHARS = 48


def shown(profile: str, name: str) -> bool:
    """Whether ``tools/list`` shows the tool ``name`` in ``profile`` (an unknown profile is ``full``)."""
    if profile == "core":
        return name in CORE
    if profile == "compact":
        return name in COMPACT
    return name not in ROUTERS


def listing(tools: list[MCPTool], profile: str) -> list[MCPTool]:
    """What ``tools/list`` answers in ``profile``: its tools, in order, groups said once."""
    kept = [tool for tool in tools if shown(profile, tool.name)]
    hidden = [tool for tool in tools if not shown(profile, tool.name) and tool.name not in ROUTERS]
    kept = [_with_directory(tool, hidden) if tool.name == "run_tool" else tool for tool in kept]
    return share(kept)


def share(tools: Iterable[MCPTool]) -> list[MCPTool]:
    """Each argument schema in full on the first tool that has it; later tools list its type only and
    say once, in their input schema's description, whose arguments they share."""
    first: dict[tuple[str, str], str] = {}  # (argument, its schema as JSON) -> the tool that said it
    out = []
    for tool in tools:
        properties = tool.input_schema.get("properties")
        if not isinstance(properties, dict):
            out.append(tool)
            continue
        changed: dict[str, Any] = {}
        owners: dict[str, list[str]] = {}
        for name, schema in properties.items():
            said = json.dumps(schema, sort_keys=True, separators=(",", ":"))
            if len(said) < SHARED_MIN_BYTES:
                continue
            owner = first.setdefault((name, said), tool.name)
            if owner != tool.name:
                changed[name] = {k: v for k, v in schema.items() if k == "type" or k.startswith("x-")}
                owners.setdefault(owner, []).append(name)
        if changed:
            told = " ".join(f"As {owner}'s: {', '.join(names)}." for owner, names in owners.items())
            schema = {**tool.input_schema, "properties": {**properties, **changed}, "description": told}
            tool = tool.model_copy(update={"input_schema": schema})
        out.append(tool)
    return out


def summary(tool: MCPTool) -> str:
    """One short line for a tool: its title, else the first sentence of its description, cut."""
    if tool.title:
        return tool.title
    text = " ".join((tool.description or "").split())
    sentence = text.split(". ")[0].split(": ")[0].split(" (")[0].rstrip(".")
    if len(sentence) > SUMMARY_CHARS:
        sentence = sentence[:SUMMARY_CHARS].rsplit(" ", 1)[0] + "..."
    return sentence


def _with_directory(tool: MCPTool, hidden: list[MCPTool]) -> MCPTool:
    if not hidden:
        return tool
    names = "; ".join(f"{t.name} ({summary(t)})" for t in hidden)
    return tool.model_copy(update={"description": f"{tool.description} Tools: {names}."})
