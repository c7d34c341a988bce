"""Workflows the ComfyUI user published as MCP tools: stored specs, live tools, list/run by name.

Each published workflow is one spec file ``<id>.json`` in ``<ComfyUI user folder>/comfyui-mcp-bridge/
tools/`` (the id never changes, so a renamed tool keeps its file). They are loaded at start and added,
replaced or removed while ComfyUI runs; every change is announced to MCP clients
(:mod:`..server.live_tools`). A spec that no longer loads (a node pack removed) stays listed, its tool
answering with the reason; one ComfyUI's validation refuses (a model deleted) is listed unavailable.
A workflow reaches the bridge only through the panel route (:mod:`..server.panel`), never over MCP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations

from ..comfyui.backend import PromptRejected
from ..mcp.paging import DESCRIPTION_CHARS, budget_schema
from ..mcp.toolset import Toolset
from ..specs.arguments import ToolArguments, compile_arguments
from ..specs.graph import TemplateError, restrict
from ..specs.library import check_spec_writes
from ..specs.publishing import RESERVED_PREFIX, PublishRefused, build_spec, check_tool_name, parse_selection
from ..specs.spec import SpecError, ToolSpec, parse_spec
from .errors import Refused, as_tool_error
from .pipeline import add_spec_tool
from .services import Services

log = logging.getLogger("comfyui_mcp_bridge")

FOLDER = ("comfyui-mcp-bridge", "tools")
MAX_PUBLISHED = 200
ID_CHARS = frozenset("0123456789abcdef")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
LIST_BYTES = 256 * 1024  # list_workflows with every input described, at most


@dataclass
class Entry:
    """One published workflow: its file, its spec (None when it no longer loads) and its tool."""

    id: str
    data: dict[str, Any]
    spec: ToolSpec | None
    problem: str | None
    tool: Tool

    @property
    def name(self) -> str:
        return str(self.data.get("_bridge", {}).get("tool", self.id))

    @property
    def meta(self) -> dict[str, Any]:
        published: dict[str, Any] = self.data.get("_bridge", {}).get("published", {})
        return published


class Published:
    """The published tools of this ComfyUI, by id."""

    def __init__(self, services: Services, folder: Path) -> None:
        self.services = services
        self.folder = folder
        self.entries: dict[str, Entry] = {}
        self.reserved: Collection[str] = ()  # names of the built-in tools
        self.on_change: Callable[[], Awaitable[Any]] | None = None
        self._put: Callable[[Tool], None] = lambda tool: None
        self._drop: Callable[[str], None] = lambda name: None
        self._lock = asyncio.Lock()

    def attach(self, put: Callable[[Tool], None], drop: Callable[[str], None]) -> None:
        """Serve the entries through ``put``/``drop`` (the MCP server's live tools). An entry stored
        under a built-in tool's name (published before that tool existed, or a diagnostic tool's) is
        listed unavailable and never served in its place."""
        self._put, self._drop = put, drop
        for entry in list(self.entries.values()):
            if self.built_in(entry.name):
                problem = f"the name {entry.name!r} is a built-in tool's; rename this workflow (Edit)"
                self.entries[entry.id] = self._broken(entry.id, entry.data, problem)
                log.warning("comfyui-mcp-bridge: published %s unavailable: %s", entry.name, problem)
            else:
                put(entry.tool)

    def built_in(self, name: str) -> bool:
        """Whether ``name`` is a built-in tool's (diagnostic tools' included, served or not)."""
        return name in self.reserved or name.startswith(RESERVED_PREFIX)

    # -- loading --

    def load(self) -> None:
        """Read every stored spec (at start; a broken one is kept with its reason)."""
        try:
            files = sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []
        except OSError as exc:
            log.warning("comfyui-mcp-bridge: cannot list published tools in %s: %s", self.folder, exc)
            return
        for path in files[:MAX_PUBLISHED]:
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("comfyui-mcp-bridge: published tool %s unreadable: %s", path, exc)
                continue
            if isinstance(data, dict) and isinstance(data.get("_bridge"), dict):
                entry = self._entry(path.stem, data)
                if entry.name in self.names(exclude=entry.id):
                    entry = self._broken(entry.id, data, f"the name {entry.name!r} is taken by another tool")
                self.entries[entry.id] = entry
        for entry in self.entries.values():
            if entry.problem:
                log.warning("comfyui-mcp-bridge: published %s unavailable: %s", entry.name, entry.problem)

    def _entry(self, entry_id: str, data: dict[str, Any]) -> Entry:
        try:
            spec = parse_spec(entry_id, data)
            comfy = self.services.comfy
            restrict(spec.template, comfy.node_class_names())
            check_spec_writes(spec, comfy.is_output_node, comfy.node_inputs)
            models = self.services.param_models
            model = compile_arguments(spec, models.limits, models.defaults, comfy.node_inputs)
        except (SpecError, TemplateError, ValueError) as exc:
            return self._broken(entry_id, data, str(exc))
        return Entry(entry_id, data, spec, None, self._tool(spec, model))

    def _broken(self, entry_id: str, data: dict[str, Any], problem: str) -> Entry:
        name = str(data.get("_bridge", {}).get("tool", entry_id))

        async def unavailable(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
            raise Refused(f"{name} is unavailable: {problem}")

        toolset = Toolset(errors=as_tool_error)
        toolset.add_spec_tool(
            name if name.isidentifier() else f"unavailable_{entry_id}",
            unavailable,
            schema={"type": "object", "properties": {}},
            description=f"Unavailable: {problem}"[:1000],
        )
        return Entry(entry_id, data, None, problem, toolset.tools[0])

    def _tool(self, spec: ToolSpec, model: type[ToolArguments]) -> Tool:
        toolset = Toolset(errors=as_tool_error)
        add_spec_tool(toolset, self.services, spec, model)
        tool = toolset.tools[0]
        tool.parameters = budget_schema(tool.parameters)  # 200 of them must still list (issue 24 #3)
        return tool

    def names(self, exclude: str | None = None) -> set[str]:
        """Every tool name in use: built-in ones and the other published ones."""
        return set(self.reserved) | {e.name for i, e in self.entries.items() if i != exclude}

    def by_name(self, name: str) -> Entry | None:
        return next((e for e in self.entries.values() if e.name == name), None)

    # -- changes (panel routes, on ComfyUI's loop) --

    async def publish(self, body: dict[str, Any]) -> Entry:
        """Validate and store a workflow from the panel; replace ``body["id"]`` when given."""
        async with self._lock:
            entry_id = body.get("id")
            if entry_id is not None and (not isinstance(entry_id, str) or entry_id not in self.entries):
                raise PublishRefused("there is no published tool with that id (it may have been unpublished)")
            if entry_id is None and len(self.entries) >= MAX_PUBLISHED:
                raise PublishRefused(f"at most {MAX_PUBLISHED} workflows can be published; unpublish one")
            new_id = entry_id if isinstance(entry_id, str) else secrets.token_hex(6)
            name = check_tool_name(body.get("name"), self.names(exclude=new_id))
            prompt = body.get("prompt")
            if not isinstance(prompt, dict) or not prompt:
                raise PublishRefused("send the API-format workflow (app.graphToPrompt().output) as 'prompt'")
            comfy = self.services.comfy
            unknown = sorted(
                {str(n.get("class_type")) for n in prompt.values() if isinstance(n, dict)}
                - comfy.node_class_names()
            )
            if unknown:
                raise PublishRefused(f"the workflow uses nodes that are not installed: {', '.join(unknown)}")
            try:
                outputs = await comfy.validate(prompt)
            except PromptRejected as exc:
                raise PublishRefused(f"ComfyUI's validation refused the workflow: {exc}") from None
            workflow = body.get("workflow")
            extra = {
                "published": {
                    "id": new_id,
                    "workflow": str(workflow)[:200] if isinstance(workflow, str) else "",
                    "selection": body.get("selection"),
                    "at": time.time(),
                }
            }
            data = await asyncio.to_thread(
                build_spec,
                prompt,
                parse_selection(body.get("selection")),
                tool=name,
                description=str(body.get("description") or ""),
                outputs=outputs,
                node_classes=comfy.node_class_names(),
                node_inputs=comfy.node_inputs,
                model_files=comfy.model_files,
                extra=extra,
            )
            entry = self._entry(new_id, data)
            if entry.problem:
                raise PublishRefused(entry.problem)
            await asyncio.to_thread(self._write, new_id, data)
            self._replace(entry)
        await self._changed()
        return entry

    async def edit(self, entry_id: object, name: object, description: object) -> Entry:
        """Rename or redescribe a published tool (its file and inputs stay)."""
        async with self._lock:
            entry = self._get(entry_id)
            meta = dict(entry.data["_bridge"])
            if name is not None:
                meta["tool"] = meta["title"] = check_tool_name(name, self.names(exclude=entry.id))
            elif self.built_in(entry.name):
                raise PublishRefused(f"{entry.name!r} is a built-in tool's name: give this workflow another")
            if description is not None:
                if not isinstance(description, str) or not description.strip():
                    raise PublishRefused("the description must say what the tool does")
                meta["description"] = description.strip()[:2000]
            data = {**entry.data, "_bridge": meta}
            new = self._entry(entry.id, data)
            await asyncio.to_thread(self._write, entry.id, data)
            self._replace(new)
        await self._changed()
        return new

    async def unpublish(self, entry_id: object) -> Entry:
        """Remove a published tool and its file."""
        async with self._lock:
            entry = self._get(entry_id)
            await asyncio.to_thread((self.folder / f"{entry.id}.json").unlink, missing_ok=True)
            del self.entries[entry.id]
            if not self.built_in(entry.name):
                self._drop(entry.tool.name)
        await self._changed()
        return entry

    def _get(self, entry_id: object) -> Entry:
        entry = self.entries.get(entry_id) if isinstance(entry_id, str) else None
        if entry is None:
            raise PublishRefused("there is no published tool with that id (it may have been unpublished)")
        return entry

    def _replace(self, entry: Entry) -> None:
        old = self.entries.get(entry.id)
        if old is not None and not self.built_in(old.name):
            self._drop(old.tool.name)
        self.entries[entry.id] = entry
        if not self.built_in(entry.name):
            self._put(entry.tool)

    async def _changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()

    def _write(self, entry_id: str, data: dict[str, Any]) -> None:
        """Write the spec file atomically (a temporary file renamed over it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mcp-bridge-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
            os.replace(tmp, self.folder / f"{entry_id}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- views --

    async def availability(self, entry: Entry) -> str | None:
        """Why ``entry`` cannot run now (ComfyUI's validation of its saved workflow), or None."""
        if entry.problem or entry.spec is None:
            return entry.problem
        try:
            await self.services.comfy.validate(entry.spec.template.prompt)
        except PromptRejected as exc:
            return f"ComfyUI's validation refuses the saved workflow: {exc}"
        return None

    async def view(self, entry: Entry) -> dict[str, Any]:
        """A published tool as list_workflows and the panel show it (JSON-safe)."""
        problem = await self.availability(entry)
        schema = entry.tool.parameters.get("properties", {})
        return {
            "id": entry.id,
            "name": entry.name,
            "description": entry.data["_bridge"].get("description", ""),
            "workflow": entry.meta.get("workflow", ""),
            "inputs": {
                k: {"kind": v.get("kind"), "description": v.get("description", "")}
                for k, v in entry.data["_bridge"].get("inputs", {}).items()
                if k in schema or entry.spec is None
            },
            "available": problem is None,
            "problem": problem,
        }


def brief(views: list[dict[str, Any]]) -> dict[str, Any]:
    """list_workflows' answer; when the views would pass :data:`LIST_BYTES`, each input is given by its
    kind alone (200 wordy workflows must still fit in what a client reads at once)."""
    if len(json.dumps(views)) <= LIST_BYTES:
        return {"workflows": views}
    for view in views:
        view["description"] = str(view["description"])[:DESCRIPTION_CHARS]
        view["inputs"] = {name: item["kind"] for name, item in view["inputs"].items()}
    return {"workflows": views, "note": "inputs by kind only: describe_tool gives a workflow's arguments"}


def folder_for(user_directory: str) -> Path:
    """Where the published tools of this ComfyUI are stored."""
    return Path(user_directory).joinpath(*FOLDER)


def register(toolset: Toolset, published: Published) -> None:
    """``list_workflows`` and ``run_workflow``: for clients that never refresh their tool list."""

    @toolset.tool(annotations=READ_ONLY)
    async def list_workflows() -> dict[str, Any]:
        """List the workflows published as tools from ComfyUI's panel: name, description, inputs and
        whether each can run now (with the reason when not). Run one with run_workflow or by its name."""
        return brief([await published.view(e) for e in list(published.entries.values())])

    @toolset.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        )
    )
    async def run_workflow(
        name: str, arguments: dict[str, Any] | None = None, ctx: Context | None = None
    ) -> CallToolResult:
        """Run a published workflow by name with its arguments (as list_workflows describes them)."""
        entry = published.by_name(name)
        if entry is None:
            names = ", ".join(sorted(e.name for e in published.entries.values())) or "none"
            raise Refused(f"no published workflow is named {name[:100]!r}; published: {names}")
        assert ctx is not None
        result: CallToolResult = await entry.tool.run(arguments or {}, ctx, convert_result=True)
        return result
