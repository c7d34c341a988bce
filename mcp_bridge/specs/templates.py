"""ComfyUI's workflow templates as tools: the catalog entries, what each needs, and its inputs.

A template is a UI-format graph from the ``comfyui-workflow-templates`` packages ComfyUI serves, listed
in their ``index.json`` (category, title, description, media type). Loader nodes name the model files
the template needs in ``properties.models`` (file name, folder, download URL). It becomes a spec the
way a published workflow does (:mod:`.publishing`): converted (:mod:`.ui_graph`), then the widgets its
App Mode selection names — else prompt texts, seeds, sizes, frame counts and image inputs — become
its arguments. Pure Python: files, node definitions and installed models are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..comfyui.backend import NodeInput
from .publishing import IMAGE_WIDGETS, MAX_INPUTS, PublishRefused, Selection, build_spec, parse_selection
from .spec import ARGUMENT_RE, OUTPUT_KINDS, RESERVED_ARGUMENTS
from .ui_graph import BYPASSED, MUTED, VIRTUAL, all_nodes, subgraph_definitions

MAX_TEXT = 300  # description characters a catalog entry keeps
TEXT_WIDGETS = frozenset({"text", "prompt"})
SIZE_WIDGETS = frozenset({"width", "height"})
FRAME_WIDGETS = {"length": "frames", "frames": "frames", "num_frames": "frames", "video_frames": "frames"}
SEED_WIDGETS = frozenset({"seed", "noise_seed"})


@dataclass(frozen=True)
class ModelFile:
    """A model file a template needs: its name, the models folder it goes in, where to download it."""

    name: str
    folder: str
    url: str = ""


@dataclass(frozen=True)
class TemplateInfo:
    """One template of the catalog."""

    name: str
    title: str
    description: str
    category: str
    media_type: str
    models: tuple[ModelFile, ...] = ()
    node_types: frozenset[str] = frozenset()
    app_mode: Any = None  # the graph's extra.linearData, when it has one
    tags: tuple[str, ...] = ()  # the index's tags and model names (searched too)


@dataclass(frozen=True)
class Missing:
    """What keeps a template from running here: model files (with folder and URL) and node types."""

    files: tuple[ModelFile, ...] = ()
    nodes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.files or self.nodes)

    def text(self) -> str:
        parts = [f"models/{m.folder}/{m.name}" + (f" ({m.url})" if m.url else "") for m in self.files]
        if self.nodes:
            parts.append("node types " + ", ".join(self.nodes))
        return "; ".join(parts)


def index_entries(index: object) -> Iterator[tuple[str, dict[str, Any]]]:
    """(category, template entry) pairs of an ``index.json`` (a list of categories with templates)."""
    for group in index if isinstance(index, list) else []:
        if not isinstance(group, dict):
            continue
        category = str(group.get("title") or group.get("category") or "")
        for entry in group.get("templates") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                yield category, entry


def describe(category: str, entry: Mapping[str, Any], workflow: Mapping[str, Any]) -> TemplateInfo:
    """A catalog entry from its index entry and its graph."""
    subgraphs = subgraph_definitions(workflow)
    models: dict[tuple[str, str], ModelFile] = {}
    types: set[str] = set()
    for node in all_nodes(workflow):
        kind = str(node.get("type", ""))
        if node.get("mode", 0) not in (MUTED, BYPASSED) and kind not in VIRTUAL and kind not in subgraphs:
            types.add(kind)
        listed = (
            (node.get("properties") or {}).get("models") if isinstance(node.get("properties"), dict) else None
        )
        for model in listed if isinstance(listed, list) else []:
            if isinstance(model, dict) and isinstance(model.get("name"), str) and model.get("directory"):
                key = (str(model["directory"]), model["name"])
                models.setdefault(key, ModelFile(model["name"], key[0], str(model.get("url") or "")))
    extra = workflow.get("extra")
    return TemplateInfo(
        name=str(entry["name"]),
        title=str(entry.get("title") or entry["name"]),
        description=str(entry.get("description") or "")[:MAX_TEXT],
        category=category,
        media_type=str(entry.get("mediaType") or ""),
        models=tuple(models.values()),
        node_types=frozenset(types),
        app_mode=extra.get("linearData") if isinstance(extra, dict) else None,
        tags=tuple(str(t) for key in ("tags", "models") for t in _strings(entry.get(key))),
    )


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)][:20] if isinstance(value, list) else []


def missing(
    info: TemplateInfo, installed: Callable[[str], Collection[str]], node_classes: Collection[str]
) -> Missing:
    """The model files not in their folder and the node types not installed."""
    files = tuple(m for m in info.models if m.name not in installed(m.folder))
    return Missing(files, tuple(sorted(t for t in info.node_types if t not in node_classes)))


def matches(info: TemplateInfo, query: str, category: str) -> bool:
    """Whether every word of ``query`` is in the name, title, description or tags, and the category fits."""
    if category and category.lower() not in (info.category.lower(), info.media_type.lower()):
        return False
    text = " ".join((info.name, info.title, info.description, *info.tags)).lower()
    return all(word in text for word in query.lower().split())


def tool_name(template: str) -> str:
    """The name a template's calls carry (jobs, the panel)."""
    return ("template_" + re.sub(r"[^A-Za-z0-9_-]+", "_", template))[:64]


def selection(
    info: TemplateInfo,
    prompt: Mapping[str, Any],
    node_inputs: Callable[[str], Mapping[str, NodeInput] | None],
) -> Selection:
    """The template's App Mode selection when it names widgets of the converted prompt, else the widgets
    a user would pick: prompt texts, seeds, sizes, frame counts and image inputs."""
    if info.app_mode is not None:
        try:
            chosen = parse_selection(info.app_mode)
        except PublishRefused:
            chosen = Selection((), ())
        inputs = tuple(i for i in chosen.inputs if _is_widget(prompt, i[0], i[1]))
        if inputs:
            return Selection(inputs, tuple(o for o in chosen.outputs if o in prompt))
    picks: list[tuple[str, str, str | None]] = []
    taken: set[str] = set()
    for node_id in sorted(prompt, key=_natural):
        node = prompt[node_id]
        declared = node_inputs(str(node["class_type"])) or {}
        for widget, value in node["inputs"].items():
            spec = declared.get(widget)
            wanted = (
                None if spec is None or isinstance(value, list) else _argument(prompt, node_id, widget, spec)
            )
            if wanted is not None and len(picks) < MAX_INPUTS:
                picks.append((node_id, widget, _free(wanted, taken)))
    return Selection(tuple(picks), ())


def template_spec(
    info: TemplateInfo,
    prompt: dict[str, Any],
    *,
    node_classes: Collection[str],
    node_inputs: Callable[[str], Mapping[str, NodeInput] | None],
    model_files: Callable[[str], list[str]],
) -> dict[str, Any]:
    """The spec of a converted template, built as a published workflow's is. Raises PublishRefused."""
    outputs = [i for i, n in prompt.items() if n["class_type"] in OUTPUT_KINDS]
    if not outputs:
        raise PublishRefused(
            f"template {info.name!r} saves nothing the bridge can deliver (it delivers "
            f"{', '.join(sorted(OUTPUT_KINDS))})"
        )
    chosen = selection(info, prompt, node_inputs)
    description = f"ComfyUI template {info.title!r}: {info.description}".strip()
    return build_spec(
        prompt,
        chosen,
        tool=tool_name(info.name),
        description=description[:2000],
        outputs=outputs,
        node_classes=node_classes,
        node_inputs=node_inputs,
        model_files=model_files,
        extra={"template": info.name},
    )


def _is_widget(prompt: Mapping[str, Any], node_id: str, widget: str) -> bool:
    node = prompt.get(node_id)
    return (
        isinstance(node, dict) and widget in node["inputs"] and not isinstance(node["inputs"][widget], list)
    )


def _argument(prompt: Mapping[str, Any], node_id: str, widget: str, spec: NodeInput) -> str | None:
    """The argument name a widget gets when it is one a user would set, else None."""
    cls = str(prompt[node_id]["class_type"])
    if (cls, widget) in IMAGE_WIDGETS:
        return IMAGE_WIDGETS[(cls, widget)]
    if spec.type == "STRING" and widget in TEXT_WIDGETS:
        return "negative_prompt" if _feeds(prompt, node_id, "negative") else "prompt"
    if spec.type == "INT" and widget in SEED_WIDGETS:
        return "seed"
    if spec.type == "INT" and widget in SIZE_WIDGETS:
        return widget
    if spec.type == "INT" and widget in FRAME_WIDGETS:
        return FRAME_WIDGETS[widget]
    return None


def _feeds(prompt: Mapping[str, Any], node_id: str, input_name: str) -> bool:
    """Whether an output of ``node_id`` goes into an input called ``input_name`` of some node."""
    return any(
        name == input_name and isinstance(value, list) and value and str(value[0]) == node_id
        for node in prompt.values()
        for name, value in node["inputs"].items()
    )


def _free(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken or candidate in RESERVED_ARGUMENTS or not ARGUMENT_RE.fullmatch(candidate):
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def _natural(node_id: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in node_id.split(":"))
