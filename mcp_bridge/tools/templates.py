"""``list_templates`` and ``run_template``: the workflow templates ComfyUI ships, as tools.

The catalog is read once, off the event loop, from the template files ComfyUI serves (through the port);
whether a template can run is checked on every call against the models and node types installed now.
A run converts the template's graph, derives its arguments (:mod:`..specs.templates`) and goes through
the pipeline every spec goes through; a template that cannot run is refused before anything is queued.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ValidationError

from ..comfyui.backend import ComfyBackend
from ..mcp.toolset import Toolset
from ..specs import params
from ..specs.arguments import ToolArguments, compile_arguments
from ..specs.graph import restrict
from ..specs.spec import ToolSpec, parse_spec
from ..specs.templates import (
    Missing,
    ModelFile,
    TemplateInfo,
    describe,
    index_entries,
    matches,
    missing,
    template_spec,
)
from ..specs.ui_graph import convert
from .errors import Refused
from .pipeline import GENERATES, run_spec
from .services import Services

log = logging.getLogger("comfyui_mcp_bridge")

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
PAGE = 20
MAX_TEMPLATES = 5000
MAX_FILE_BYTES = 20 * 1024 * 1024


class TemplateCatalog:
    """The templates ComfyUI serves, read once (the packages do not change while ComfyUI runs)."""

    def __init__(self, comfy: ComfyBackend) -> None:
        self.comfy = comfy
        self._entries: dict[str, tuple[TemplateInfo, Path]] | None = None
        self._lock = threading.Lock()

    def entries(self) -> dict[str, tuple[TemplateInfo, Path]]:
        """Every template by name with its file (blocking: call off the event loop)."""
        with self._lock:
            if self._entries is None:
                self._entries = self._load()
            return self._entries

    def _load(self) -> dict[str, tuple[TemplateInfo, Path]]:
        files = self.comfy.template_files()
        index = files.get("index.json")
        if index is None:
            return {}
        found: dict[str, tuple[TemplateInfo, Path]] = {}
        for category, entry in index_entries(_read(index)):
            path = files.get(f"{entry['name']}.json")
            if path is None or entry["name"] in found or len(found) >= MAX_TEMPLATES:
                continue
            try:
                found[entry["name"]] = (describe(category, entry, _read(path)), path)
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                log.warning("comfyui-mcp-bridge: template %s unreadable: %s", path.name, exc)
        return found

    def files(self, cache: dict[str, frozenset[str]], folder: str) -> frozenset[str]:
        """The installed model files of ``folder``, listed once per call (``cache``)."""
        if folder not in cache:
            cache[folder] = frozenset(self.comfy.model_files(folder))
        return cache[folder]

    def missing(self, info: TemplateInfo, cache: dict[str, frozenset[str]]) -> Missing:
        return missing(info, lambda folder: self.files(cache, folder), self.comfy.node_class_names())

    def spec(
        self, services: Services, info: TemplateInfo, path: Path
    ) -> tuple[ToolSpec, type[ToolArguments]]:
        """The template as a spec with its arguments model (blocking). Raises Refused."""
        comfy = self.comfy
        try:
            converted = convert(_read(path), comfy.node_inputs)
            if converted.missing:
                raise Refused(
                    f"template {info.name!r} needs node types not installed: {', '.join(converted.missing)}"
                )
            data = template_spec(
                info,
                converted.prompt,
                node_classes=comfy.node_class_names(),
                node_inputs=comfy.node_inputs,
                model_files=comfy.model_files,
            )
            spec = parse_spec(info.name, data)
            restrict(spec.template, comfy.node_class_names())
            models = services.param_models
            return spec, compile_arguments(spec, models.limits, models.defaults, comfy.node_inputs)
        except Refused:
            raise
        except (OSError, ValueError) as exc:  # conversion, publishing, spec and template errors
            raise Refused(f"template {info.name!r} cannot be run as a tool: {exc}") from None


def _read(path: Path) -> Any:
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{path.name} is over {MAX_FILE_BYTES} bytes")
    return json.loads(data)


def _view(
    catalog: TemplateCatalog, services: Services, info: TemplateInfo, cache: dict[str, frozenset[str]]
) -> dict[str, Any]:
    """One template as list_templates shows it (inputs derived from its graph)."""
    lacking = catalog.missing(info, cache)
    item: dict[str, Any] = {
        "name": info.name,
        "title": info.title,
        "category": info.category,
        "media_type": info.media_type,
        "description": info.description,
        "runnable": not lacking,
    }
    if lacking:
        item["missing"] = {
            "files": [{"name": m.name, "folder": m.folder, "url": m.url} for m in lacking.files],
            "node_types": list(lacking.nodes),
        }
    else:
        try:
            spec, _model = catalog.spec(services, info, catalog.entries()[info.name][1])
            item["inputs"] = {i.name: i.kind for i in spec.inputs}
        except Refused as exc:
            item["runnable"], item["problem"] = False, str(exc)
    return item


def _line(item: dict[str, Any]) -> str:
    head = f"- {item['name']}: {item['title']} [{item['category']}]"
    if item.get("inputs"):
        return f"{head} runnable; arguments: {', '.join(item['inputs'])}"
    if item.get("problem"):
        return f"{head} cannot run: {item['problem']}"
    if "missing" in item:
        lacking = Missing(
            tuple(_file(f) for f in item["missing"]["files"]), tuple(item["missing"]["node_types"])
        )
        return f"{head} missing {lacking.text()}"
    return head


def _file(raw: dict[str, str]) -> ModelFile:
    return ModelFile(raw["name"], raw["folder"], raw["url"])


def register(toolset: Toolset, services: Services, catalog: TemplateCatalog) -> None:
    """Add ``list_templates`` and ``run_template``."""

    @toolset.tool(annotations=READ_ONLY)
    async def list_templates(
        query: str = "", category: str = "", runnable_only: bool = False, page: int = 1
    ) -> CallToolResult:
        """ComfyUI's own workflow templates: name, title, category, whether each can run here (else the
        model files to download, with folder and URL, or node types to install) and its arguments.
        query: words to find; category: e.g. Image, Video, Getting Started; 20 per page."""
        if page < 1 or len(query) > 200 or len(category) > 100:
            raise Refused("page starts at 1; query is at most 200 characters, category 100")

        def work() -> dict[str, Any]:
            cache: dict[str, frozenset[str]] = {}
            found = [i for i, _p in catalog.entries().values() if matches(i, query, category)]
            if runnable_only:
                found = [i for i in found if not catalog.missing(i, cache)]
            shown = found[(page - 1) * PAGE : page * PAGE]
            items = [_view(catalog, services, i, cache) for i in shown]
            more = len(found) > page * PAGE
            return {
                "templates": items,
                "total": len(found),
                "page": page,
                "next_page": page + 1 if more else None,
            }

        result = await asyncio.to_thread(work)
        lines = [_line(i) for i in result["templates"]]
        head = f"{result['total']} templates match; page {page}" + (
            f" (more: page={result['next_page']})" if result["next_page"] else ""
        )
        return CallToolResult(
            content=[TextContent(type="text", text="\n".join([head, *lines]))], structured_content=result
        )

    @toolset.tool(annotations=GENERATES)
    async def run_template(
        name: str, arguments: dict[str, Any] | None = None, ctx: Context | None = None
    ) -> CallToolResult:
        """Run one of ComfyUI's templates by name with its arguments (list_templates shows them; e.g.
        prompt, seed, width, height, image; output_path too). Refused when its models are missing."""
        entries = await asyncio.to_thread(catalog.entries)
        if name not in entries:
            close = difflib.get_close_matches(name, list(entries), n=5)
            raise Refused(
                f"no template is named {name[:100]!r}"
                + (f"; close: {', '.join(close)}" if close else "; see list_templates")
            )
        info, path = entries[name]
        lacking = await asyncio.to_thread(catalog.missing, info, {})
        if lacking:
            raise Refused(f"template {name!r} cannot run here; missing: {lacking.text()}")
        spec, model = await asyncio.to_thread(catalog.spec, services, info, path)
        try:
            parsed = model.model_validate(arguments or {})
        except ValidationError as exc:
            raise Refused(f"invalid arguments for template {name!r}: {params.explain(exc)}") from None
        assert ctx is not None
        return await run_spec(services, spec, parsed, ctx)
