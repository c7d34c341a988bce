"""Turn a workflow the user publishes from the panel into a tool spec (see :mod:`.specs`).

The panel sends ComfyUI's own conversion of the graph (``app.graphToPrompt()``, API format) and a
selection shaped like App Mode's ``extra.linearData``: ``{"inputs": [[node_id, widget, {...}?], ...],
"outputs": [node_id, ...]}``. Each selected widget becomes an argument whose kind comes from ComfyUI's
node definition: a combo over model files is a ``model`` input naming its folder (not an enum of every
file), LoadImage's image an ``image`` input, a seed a ``seed`` input; every widget not selected keeps
the value the user saved. Pure Python: the node definitions and model folders are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..comfyui.backend import NodeInput
from .spec import ARGUMENT_RE, RESERVED_ARGUMENTS, RESULT_FIELDS, TOOL_NAME_RE
from .writes import PATH_INPUTS, WritesRefused, check_writes

# Loader widgets whose combo lists a model folder (other combos are compared with the folders' files).
MODEL_WIDGETS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("VAELoader", "vae_name"): "vae",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
}
MODEL_FOLDERS = ("checkpoints", "loras", "vae", "upscale_models", "controlnet", "embeddings")
IMAGE_WIDGETS = {("LoadImage", "image"): "image", ("LoadImageMask", "image"): "mask"}
SEED_WIDGETS = frozenset({"seed", "noise_seed"})
RESERVED_PREFIX = "debug_"  # the bridge's diagnostic tools, registered or not (debug_tools)
MAX_INPUTS = 32
MAX_TEXT = 2000


class PublishRefused(ValueError):
    """The workflow or the selection cannot become a tool; the message says why and what would do."""


@dataclass(frozen=True)
class Selection:
    """What the user picked: (node id, widget, optional argument name) and output node ids."""

    inputs: tuple[tuple[str, str, str | None], ...]
    outputs: tuple[str, ...]


def parse_selection(raw: object) -> Selection:
    """Read ``{"inputs": [[node, widget, {"name"?}?], ...], "outputs": [node, ...]}`` (linearData)."""
    if not isinstance(raw, dict):
        raise PublishRefused('the selection must be {"inputs": [[node_id, widget], ...], "outputs": [...]}')
    items = raw.get("inputs") or []
    outputs = raw.get("outputs") or []
    if not isinstance(items, list) or not isinstance(outputs, list):
        raise PublishRefused("the selection's inputs and outputs must be lists")
    if len(items) > MAX_INPUTS:
        raise PublishRefused(f"a tool takes at most {MAX_INPUTS} inputs; {len(items)} were picked")
    picked: list[tuple[str, str, str | None]] = []
    for item in items:
        if not (isinstance(item, list) and 2 <= len(item) <= 3 and isinstance(item[1], str)):
            raise PublishRefused("each selected input is [node_id, widget] or [node_id, widget, {...}]")
        extra = item[2] if len(item) == 3 and isinstance(item[2], dict) else {}
        name = extra.get("name")
        picked.append((str(item[0]), item[1], name if isinstance(name, str) and name else None))
    return Selection(tuple(picked), tuple(str(o) for o in outputs))


def slug(text: str) -> str:
    """A lower-case identifier made from ``text`` ("" when nothing is left)."""
    word = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    word = re.sub(r"^[^a-z]+", "", word)
    return word[:64]


def check_tool_name(name: object, taken: Collection[str]) -> str:
    """A valid, free MCP tool name, or :class:`PublishRefused` saying what is valid."""
    if not isinstance(name, str) or not TOOL_NAME_RE.fullmatch(name):
        raise PublishRefused("the tool name must be 1-64 letters, digits, '_' or '-', starting with a letter")
    if name in taken or name.startswith(RESERVED_PREFIX):
        raise PublishRefused(f"a tool named {name!r} already exists; choose another name")
    return name


def build_spec(
    prompt: Mapping[str, Any],
    selection: Selection,
    *,
    tool: str,
    description: str,
    outputs: Collection[str],
    node_classes: Collection[str],
    node_inputs: Callable[[str], Mapping[str, NodeInput] | None],
    model_files: Callable[[str], list[str]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The spec file of a published workflow. ``outputs`` are the output nodes ComfyUI's validation found
    (the selection may narrow them). Raises :class:`PublishRefused`."""
    nodes = _check_nodes(prompt, node_classes)
    if not isinstance(description, str) or not description.strip() or len(description) > MAX_TEXT:
        raise PublishRefused(f"give the tool a description (at most {MAX_TEXT} characters)")
    chosen = list(selection.outputs) or list(outputs)
    unknown = [o for o in chosen if o not in outputs]
    if unknown:
        raise PublishRefused(
            f"nodes {', '.join(unknown)} are not output nodes of this workflow; its outputs are "
            f"{', '.join(outputs) or 'none'}"
        )
    if not chosen:
        raise PublishRefused("the workflow has no output node (SaveImage, SaveVideo, ...)")
    kept = _drop_unchosen_outputs(nodes, set(outputs) - set(chosen))
    output_classes = {str(nodes[o]["class_type"]) for o in outputs if o in nodes}
    try:
        check_writes(kept, named=chosen, is_output_node=output_classes.__contains__, node_inputs=node_inputs)
    except WritesRefused as exc:
        raise PublishRefused(str(exc)) from None
    inputs: dict[str, dict[str, Any]] = {}
    for node_id, widget, name in selection.inputs:
        if node_id in nodes and node_id not in kept:
            raise PublishRefused(
                f"node {node_id} is an output node left out of the tool's outputs; pick it as an output "
                "or none of its widgets"
            )
        arg = _argument_name(name, widget, nodes, node_id, inputs)
        inputs[arg] = _input(kept, node_id, widget, node_inputs, model_files)
    if not inputs:
        raise PublishRefused("pick at least one widget as an input of the tool")
    meta = {
        "tool": tool,
        "title": tool,
        "description": description.strip(),
        "inputs": inputs,
        "outputs": chosen,
        **(extra or {}),
    }
    workflow = {
        i: {"class_type": n["class_type"], "inputs": n["inputs"], **_title(n)} for i, n in kept.items()
    }
    return {**workflow, "_bridge": meta}


def _drop_unchosen_outputs(nodes: dict[str, dict[str, Any]], unchosen: set[str]) -> dict[str, dict[str, Any]]:
    """The workflow without the output nodes the user left out (ComfyUI would run them all and save
    their files); one that a kept node reads from stays, as ComfyUI must run it anyway."""
    linked = {
        str(value[0])
        for node in nodes.values()
        for value in node["inputs"].values()
        if isinstance(value, list) and len(value) == 2
    }
    return {i: n for i, n in nodes.items() if i not in unchosen or i in linked}


def _title(node: Mapping[str, Any]) -> dict[str, Any]:
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, dict) else None
    return {"_meta": {"title": str(title)[:200]}} if isinstance(title, str) else {}


def _check_nodes(prompt: Mapping[str, Any], node_classes: Collection[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(prompt, dict) or not prompt:
        raise PublishRefused("the workflow is empty: send the output of app.graphToPrompt()")
    nodes: dict[str, dict[str, Any]] = {}
    missing: set[str] = set()
    for node_id, node in prompt.items():
        if not (isinstance(node, dict) and isinstance(node.get("class_type"), str)):
            raise PublishRefused(f"node {node_id} is not an API-format node (class_type and inputs)")
        cls = node["class_type"]
        if cls not in node_classes:
            missing.add(cls)
            continue
        if not isinstance(node.get("inputs"), dict):
            raise PublishRefused(f"node {node_id} ({cls}) has no 'inputs' object")
        nodes[str(node_id)] = node
    if missing:
        raise PublishRefused(f"the workflow uses nodes that are not installed: {', '.join(sorted(missing))}")
    return nodes


def _argument_name(
    wanted: str | None, widget: str, nodes: Mapping[str, Any], node_id: str, taken: Mapping[str, Any]
) -> str:
    if wanted is not None:
        if wanted in RESULT_FIELDS:
            raise PublishRefused(
                f"argument name {wanted!r} is a field of every result ({', '.join(sorted(RESULT_FIELDS))}); "
                "pick another name"
            )
        if not ARGUMENT_RE.fullmatch(wanted) or wanted in RESERVED_ARGUMENTS or wanted in taken:
            raise PublishRefused(
                f"argument name {wanted!r}: use a free lower-case identifier other than output_path/overwrite"
            )
        return wanted
    title = _title(nodes.get(node_id, {})).get("_meta", {}).get("title", "")
    for candidate in (slug(widget), f"{slug(title)}_{slug(widget)}", f"{slug(widget)}_{slug(node_id)}"):
        free = candidate not in RESERVED_ARGUMENTS | RESULT_FIELDS and candidate not in taken
        if free and ARGUMENT_RE.fullmatch(candidate):
            return candidate
    return f"input_{len(taken) + 1}"


def _input(
    nodes: Mapping[str, dict[str, Any]],
    node_id: str,
    widget: str,
    node_inputs: Callable[[str], Mapping[str, NodeInput] | None],
    model_files: Callable[[str], list[str]],
) -> dict[str, Any]:
    node = nodes.get(node_id)
    if node is None:
        raise PublishRefused(f"the selection names node {node_id}, which is not in the workflow")
    cls = node["class_type"]
    value = node["inputs"].get(widget)
    declared = (node_inputs(cls) or {}).get(widget)
    if declared is None or widget not in node["inputs"]:
        raise PublishRefused(f"node {node_id} ({cls}) has no widget {widget!r}")
    if isinstance(value, list):
        raise PublishRefused(f"node {node_id} ({cls}): {widget!r} is connected to another node, not a widget")
    if widget == "filename_prefix" or widget in PATH_INPUTS:
        raise PublishRefused(f"node {node_id} ({cls}): {widget!r} names files; the bridge names the outputs")
    title = _title(node).get("_meta", {}).get("title") or cls
    words = f"{title}: {widget}"
    item: dict[str, Any] = {"node": node_id, "input": widget}
    kind = _kind(cls, widget, declared, model_files)
    if kind.startswith("model:"):
        folder = kind.split(":", 1)[1]
        item |= {"kind": "model", "folder": folder, "default": value}
        words += f" (one of the installed models/{folder} files; default {value!r})"
    else:
        item["kind"] = kind
        if kind in ("image", "mask"):
            item["required"] = True
            words += " (a file name in ComfyUI's input folder, a comfy:// link, an allowed path or base64)"
        elif kind == "seed":
            words += " (random when omitted; the seed used is reported)"
    if declared.tooltip:
        words += f". {declared.tooltip}"
    item["description"] = words[:MAX_TEXT]
    return item


def _kind(cls: str, widget: str, declared: NodeInput, model_files: Callable[[str], list[str]]) -> str:
    if (cls, widget) in IMAGE_WIDGETS:
        return IMAGE_WIDGETS[(cls, widget)]
    if (cls, widget) in MODEL_WIDGETS:
        return "model:" + MODEL_WIDGETS[(cls, widget)]
    match declared.type:
        case "INT":
            return "seed" if widget in SEED_WIDGETS else "int"
        case "FLOAT":
            return "float"
        case "BOOLEAN":
            return "bool"
        case "STRING":
            return "text"
        case "COMBO":
            if widget == "sampler_name":
                return "sampler"
            if widget == "scheduler":
                return "scheduler"
            options = set(declared.options)
            for folder in MODEL_FOLDERS:
                files = model_files(folder)
                if files and options == set(files):
                    return "model:" + folder
            return "choice"
    raise PublishRefused(f"{cls}.{widget} is a {declared.type} input, which a tool cannot take")
