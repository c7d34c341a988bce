"""API-format workflow templates: load, validate, fill declared slots, chain LoRAs.

Pure Python (no ComfyUI import). A template is a ComfyUI API-format prompt (``{node_id: {"class_type",
"inputs"}}``) plus one top-level ``"_bridge"`` entry that the loader strips::

    "_bridge": {
      "description": "...",
      "slots": {"<param>": {"node": "<id>", "input": "<input name>",
                            "type": "string|int|float|bool", "required": false}},
      "bypass": {"<id>": {"through": "<link input>", "when": {"<param>": <scalar or null>}}}
    }

* A slot names the one node input that receives a parameter; the template's value there is the default.
* A bypassed node is removed when every ``when`` condition equals the value given to :func:`build_prompt`
  (an absent value counts as ``null``); consumers of its output 0 are rewired to the link in ``through``.
* LoRAs are chained after the template's single ``CheckpointLoaderSimple``: every consumer of its MODEL
  and CLIP outputs is rewired, by link, to the last ``LoraLoader``.
* ControlNets are chained on the conditioning of one node (its ``positive`` and ``negative`` links,
  e.g. the KSampler): LoadImage -> optional preprocessor -> ControlNetLoader -> ControlNetApplyAdvanced,
  each apply taking the previous one's two outputs; the node then reads the last apply's.
* An inpainting checkpoint swaps a noise-mask inpaint for the model's own conditioning
  (:class:`InpaintModel`): InpaintModelConditioning takes the sampler's positive/negative links (after
  any ControlNets), the VAE, the image and the mask; the sampler reads its three outputs, and the nodes
  that only fed the old latent (VAEEncode, SetLatentNoiseMask) are dropped.
* The outputs are the nodes listed in ``"outputs"`` or, without that list, every node of a known saving
  class (:data:`SAVE_NODES`); each output node with a ``filename_prefix`` input gets the caller's prefix.

Caller values are only ever placed into declared slots and only as scalars: in the API format a
two-element list is a node link, so lists and dicts are refused.

Other top-level keys starting with ``_`` are ignored (room for comments).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

log = logging.getLogger("comfyui_mcp_bridge")

META_KEY = "_bridge"
MAX_TEMPLATE_BYTES = 1_000_000

SlotType = Literal["string", "int", "float", "bool"]
Scalar = str | int | float | bool
Prompt = dict[str, dict[str, Any]]

# Outputs and required inputs of the core nodes the bundled templates use. Classes not listed here are
# checked only against ``node_classes`` / ``node_outputs`` given to the loader.
CORE_NODES: dict[str, tuple[int, frozenset[str]]] = {
    "CheckpointLoaderSimple": (3, frozenset({"ckpt_name"})),
    "CLIPTextEncode": (1, frozenset({"text", "clip"})),
    "EmptyLatentImage": (1, frozenset({"width", "height", "batch_size"})),
    "KSampler": (
        1,
        frozenset(
            "model seed steps cfg sampler_name scheduler positive negative latent_image denoise".split()
        ),
    ),
    "VAEDecode": (1, frozenset({"samples", "vae"})),
    "VAEEncode": (1, frozenset({"pixels", "vae"})),
    "SaveImage": (0, frozenset({"images", "filename_prefix"})),
    "LoadImage": (2, frozenset({"image"})),
    "LoraLoader": (2, frozenset({"model", "clip", "lora_name", "strength_model", "strength_clip"})),
    "RepeatLatentBatch": (1, frozenset({"samples", "amount"})),
    "ImageScale": (1, frozenset({"image", "upscale_method", "width", "height", "crop"})),
    "UpscaleModelLoader": (1, frozenset({"model_name"})),
    "ImageUpscaleWithModel": (1, frozenset({"upscale_model", "image"})),
    "EmptyImage": (1, frozenset({"width", "height", "batch_size", "color"})),
    "ControlNetLoader": (1, frozenset({"control_net_name"})),
    "ControlNetApplyAdvanced": (
        2,
        frozenset("positive negative control_net image strength start_percent end_percent".split()),
    ),
    "Canny": (1, frozenset({"image", "low_threshold", "high_threshold"})),
    "LoadImageMask": (1, frozenset({"image", "channel"})),
    "GrowMask": (1, frozenset({"mask", "expand", "tapered_corners"})),
    "SetLatentNoiseMask": (1, frozenset({"samples", "mask"})),
    "ImageCompositeMasked": (1, frozenset({"destination", "source", "x", "y", "resize_source"})),
    "InpaintModelConditioning": (3, frozenset({"positive", "negative", "vae", "pixels", "mask"})),
    "ImagePadForOutpaint": (2, frozenset({"image", "left", "top", "right", "bottom", "feathering"})),
    "ImageBatch": (1, frozenset({"image1", "image2"})),
    "CreateVideo": (1, frozenset({"images", "fps"})),
    "SaveVideo": (0, frozenset({"video", "filename_prefix", "format", "codec"})),
    "SaveAnimatedWEBP": (0, frozenset({"images", "filename_prefix", "fps", "lossless", "quality", "method"})),
}
CHECKPOINT_LOADER = "CheckpointLoaderSimple"
LORA_LOADER = "LoraLoader"
# ControlNet preprocessors by the name callers use: node class and its inputs besides ``image``.
# Canny is core ComfyUI; the others exist only with comfyui_controlnet_aux (their inputs are optional).
PREPROCESSORS: dict[str, tuple[str, dict[str, Scalar]]] = {
    "canny": ("Canny", {"low_threshold": 0.4, "high_threshold": 0.8}),
    "depth": ("MiDaS-DepthMapPreprocessor", {}),
    "openpose": ("OpenposePreprocessor", {}),
    "lineart": ("LineArtPreprocessor", {}),
}
SAVE_IMAGE = "SaveImage"
# Core and common custom nodes that write files into ComfyUI's output folder.
SAVE_NODES = frozenset(
    {SAVE_IMAGE, "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveWEBM", "SaveVideo", "VHS_VideoCombine"}
)

_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}(/[A-Za-z0-9][A-Za-z0-9_-]{0,63}){0,3}")


class TemplateError(ValueError):
    """A template file is broken (raised while loading; the loader turns it into a disabled template)."""


class SlotValueRejected(ValueError):
    """A value given to :func:`build_prompt` cannot go into the template."""


class LoraLike(Protocol):
    """Anything with a LoRA's name and strengths (``params.LoraParam`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def strength_model(self) -> float: ...
    @property
    def strength_clip(self) -> float: ...


def available_preprocessors(node_classes: Collection[str]) -> list[str]:
    """The preprocessor names ComfyUI can run now ("none" first: the image already is the map)."""
    return ["none", *(name for name, (cls, _) in PREPROCESSORS.items() if cls in node_classes)]


class ControlLike(Protocol):
    """One ControlNet of a stack: its model, a control image already in ComfyUI's input folder, how
    strongly and when it steers, and its preprocessor (a key of :data:`PREPROCESSORS`; None: the
    image already is the control map)."""

    @property
    def model(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def strength(self) -> float: ...
    @property
    def start_percent(self) -> float: ...
    @property
    def end_percent(self) -> float: ...
    @property
    def preprocessor(self) -> str | None: ...


@dataclass(frozen=True)
class ControlStep:
    """A :class:`ControlLike` as plain values (what the pipeline hands to :func:`build_prompt`)."""

    model: str
    image: str
    strength: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    preprocessor: str | None = None


@dataclass(frozen=True)
class InpaintModel:
    """How a template inpaints with an inpainting checkpoint: the links InpaintModelConditioning takes
    besides the ``sampler`` node's positive/negative, and whether to keep a latent noise mask too."""

    sampler: str
    vae: tuple[str, int]
    pixels: tuple[str, int]
    mask: tuple[str, int]
    noise_mask: bool = True


INPAINT_CONDITIONING = "InpaintModelConditioning"


@dataclass(frozen=True)
class Slot:
    """Where one parameter goes: ``prompt[node]["inputs"][input]``."""

    node: str
    input: str
    type: SlotType
    required: bool = False


@dataclass(frozen=True)
class Bypass:
    """Drop ``node`` when every ``when`` value matches; its consumers then read the ``through`` link."""

    node: str
    through: str
    when: Mapping[str, Scalar | None]


@dataclass(frozen=True)
class Template:
    """A validated template. ``prompt`` is never handed out; :func:`build_prompt` copies it."""

    name: str
    description: str
    prompt: Prompt
    slots: Mapping[str, Slot]
    bypasses: tuple[Bypass, ...]
    checkpoint_node: str | None  # the single CheckpointLoaderSimple, if any: LoRAs chain after it
    save_nodes: tuple[str, ...]

    @property
    def supports_loras(self) -> bool:
        return self.checkpoint_node is not None


def build_prompt(
    template: Template,
    values: Mapping[str, Scalar | None],
    loras: Sequence[LoraLike] = (),
    *,
    filename_prefix: str,
    controls: Sequence[ControlLike] = (),
    control_target: str | None = None,
    more_images: Mapping[str, Sequence[str]] | None = None,
    inpaint_model: InpaintModel | None = None,
    noise_mask_input: bool = True,
) -> Prompt:
    """A fresh API prompt: ``values`` in their slots, ``loras`` chained, outputs prefixed; ``controls``
    are chained on the conditioning of node ``control_target``.

    ``values`` keys must be slot names; ``None`` means "not given" (the template default stays).
    ``filename_prefix`` goes to every output node, e.g. ``"mcp/<job-id>"``. Raises
    :class:`SlotValueRejected`; never mutates the template.

    ``more_images`` maps an image slot (a LoadImage input) to further input files: each gets its own
    LoadImage, batched after the slot's image with ImageBatch (which resizes it to the first image's size).
    ``inpaint_model`` (for an inpainting checkpoint) conditions the sampler with InpaintModelConditioning,
    after the ControlNets; ``noise_mask_input`` says whether ComfyUI's node has its ``noise_mask`` input.
    """
    checked = _check_values(template, values)
    prefix = _check_prefix(filename_prefix)
    chain = _check_loras(template, loras)

    prompt = copy.deepcopy(template.prompt)
    removed: set[str] = set()
    for bypass in template.bypasses:
        if all(checked.get(key) == want for key, want in bypass.when.items()):
            _bypass(prompt, bypass)
            removed.add(bypass.node)
    for key, value in checked.items():
        slot = template.slots[key]
        if value is not None and slot.node not in removed:
            prompt[slot.node]["inputs"][slot.input] = value
    if chain:
        assert template.checkpoint_node is not None
        _chain_loras(prompt, template.checkpoint_node, chain)
    if controls:
        _chain_controls(prompt, _check_target(template, control_target), controls)
    if inpaint_model is not None:
        _use_inpaint_model(prompt, inpaint_model, noise_mask_input)
    for key, names in (more_images or {}).items():
        slot = template.slots[key]
        if names and slot.node not in removed:
            _chain_images(prompt, slot.node, slot.input, names)
    for node_id in template.save_nodes:
        if "filename_prefix" in prompt[node_id]["inputs"]:
            prompt[node_id]["inputs"]["filename_prefix"] = prefix
    return prompt


def default_folder() -> Path:
    """The shipped tool specs: ``workflows/tools/``. Not ``workflows/`` itself: ComfyUI's template
    browser lists every JSON file directly in a custom node's ``workflows/`` folder, and a spec is no
    graph its editor can open (it showed an empty graph and a TypeError)."""
    return Path(__file__).resolve().parents[2] / "workflows" / "tools"


def read_workflow_file(path: Path) -> str:
    """A workflow file's text (size-capped, UTF-8); raise :class:`TemplateError`."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise TemplateError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if len(raw) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"{path.name} is larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateError(f"{path.name} is not UTF-8") from None


def parse_template(
    name: str,
    text: str,
    node_classes: Collection[str] | None = None,
    node_outputs: Mapping[str, int] | None = None,
) -> Template:
    """Validate one template's JSON text; raise :class:`TemplateError` saying what is wrong."""
    return parse_template_data(name, load_json(text), node_classes, node_outputs)


def load_json(text: str) -> Any:
    """Parse a workflow file's JSON strictly (NaN and Infinity refused); raise :class:`TemplateError`."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise TemplateError(f"invalid JSON: {exc}") from None


def parse_template_data(
    name: str,
    data: Any,
    node_classes: Collection[str] | None = None,
    node_outputs: Mapping[str, int] | None = None,
) -> Template:
    """Validate a template given as parsed JSON; raise :class:`TemplateError` saying what is wrong."""
    if not isinstance(data, dict):
        raise TemplateError("the top level must be a JSON object of nodes")
    meta = data.get(META_KEY)
    if not isinstance(meta, dict):
        raise TemplateError(f"missing the {META_KEY!r} object that declares the slots")
    prompt: Prompt = {}
    for node_id, node in data.items():
        if node_id.startswith("_"):
            continue
        prompt[node_id] = _check_node(node_id, node)
    if not prompt:
        raise TemplateError("the template has no nodes")
    _check_links(prompt, node_outputs)
    _check_acyclic(prompt)
    if node_classes is not None:
        _check_classes(prompt, node_classes, node_outputs)

    slots = _parse_slots(prompt, meta.get("slots"))
    bypasses = _parse_bypasses(prompt, slots, meta.get("bypass", {}))
    loaders = [i for i, n in prompt.items() if n["class_type"] == CHECKPOINT_LOADER]
    saves = _parse_outputs(prompt, meta.get("outputs"))
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise TemplateError("'description' must be a string")
    return Template(
        name=name,
        description=description,
        prompt=prompt,
        slots=slots,
        bypasses=bypasses,
        checkpoint_node=loaders[0] if len(loaders) == 1 else None,
        save_nodes=saves,
    )


def _parse_outputs(prompt: Prompt, raw: object) -> tuple[str, ...]:
    if raw is None:
        saves = tuple(i for i, n in prompt.items() if n["class_type"] in SAVE_NODES)
        if not saves:
            raise TemplateError(
                f"the template has no {SAVE_IMAGE} node (or another saving node) and no 'outputs'"
            )
        return saves
    if not isinstance(raw, list) or not raw or not all(isinstance(i, str) for i in raw):
        raise TemplateError("'outputs' must be a non-empty list of node ids")
    missing = [i for i in raw if i not in prompt]
    if missing:
        raise TemplateError(f"'outputs' names missing nodes {', '.join(missing)}")
    return tuple(dict.fromkeys(raw))


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not allowed")


def is_link(value: object) -> bool:
    """True for a value ComfyUI reads as a node link: any two-element list."""
    return isinstance(value, list) and len(value) == 2


def _check_node(node_id: str, node: object) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise TemplateError(f"node {node_id}: must be an object")
    class_type = node.get("class_type")
    inputs = node.get("inputs")
    if not isinstance(class_type, str) or not class_type:
        raise TemplateError(f"node {node_id}: 'class_type' must be a non-empty string")
    if not isinstance(inputs, dict):
        raise TemplateError(f"node {node_id} ({class_type}): 'inputs' must be an object")
    for key, value in inputs.items():
        if is_link(value):
            continue
        if not _is_scalar(value):
            raise TemplateError(
                f"node {node_id} ({class_type}): input {key!r} must be a scalar or a [node_id, output] link"
            )
    known = CORE_NODES.get(class_type)
    if known is not None:
        missing = sorted(known[1] - inputs.keys())
        if missing:
            raise TemplateError(f"node {node_id} ({class_type}): missing inputs {', '.join(missing)}")
    return node


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def _output_count(class_type: str, node_outputs: Mapping[str, int] | None) -> int | None:
    if node_outputs is not None and class_type in node_outputs:
        return node_outputs[class_type]
    known = CORE_NODES.get(class_type)
    return known[0] if known else None


def _check_links(prompt: Prompt, node_outputs: Mapping[str, int] | None) -> None:
    for node_id, node in prompt.items():
        for key, value in node["inputs"].items():
            if not is_link(value):
                continue
            source, index = value
            where = f"node {node_id} ({node['class_type']}) input {key!r}"
            if not isinstance(source, str) or isinstance(index, bool) or not isinstance(index, int):
                raise TemplateError(f'{where}: a link must be ["node_id", output_index]')
            if source not in prompt:
                raise TemplateError(f"{where}: links to missing node {source}")
            count = _output_count(prompt[source]["class_type"], node_outputs)
            if index < 0 or (count is not None and index >= count):
                raise TemplateError(
                    f"{where}: node {source} ({prompt[source]['class_type']}) has no output {index}"
                )


def _check_acyclic(prompt: Prompt) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(start: str) -> None:
        stack: list[tuple[str, Iterable[Any]]] = [(start, iter(prompt[start]["inputs"].values()))]
        state[start] = 1
        while stack:
            node_id, values = stack[-1]
            for value in values:
                if is_link(value):
                    source = value[0]
                    if state.get(source) == 1:
                        raise TemplateError(f"the links form a cycle through node {source}")
                    if source not in state:
                        state[source] = 1
                        stack.append((source, iter(prompt[source]["inputs"].values())))
                        break
            else:
                state[node_id] = 2
                stack.pop()

    for node_id in prompt:
        if node_id not in state:
            visit(node_id)


def restrict(template: Template, node_classes: Collection[str]) -> None:
    """Raise :class:`TemplateError` when ``template`` uses a node class ComfyUI does not have."""
    _check_classes(template.prompt, node_classes, None)


def _check_classes(
    prompt: Prompt, node_classes: Collection[str], node_outputs: Mapping[str, int] | None
) -> None:
    unknown = sorted({n["class_type"] for n in prompt.values()} - set(node_classes))
    if unknown:
        raise TemplateError(f"ComfyUI has no node class {', '.join(unknown)}")
    if node_outputs is not None:
        _check_links(prompt, node_outputs)


_TYPE_NAMES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
}


def _matches(slot_type: str, value: object) -> bool:
    if isinstance(value, bool) and slot_type != "bool":
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, _TYPE_NAMES[slot_type])


def _parse_slots(prompt: Prompt, raw: object) -> dict[str, Slot]:
    if not isinstance(raw, dict):
        raise TemplateError("'slots' must be an object of {param: {node, input, type}}")
    slots: dict[str, Slot] = {}
    for key, spec in raw.items():
        if not isinstance(spec, dict):
            raise TemplateError(f"slot {key!r}: must be an object")
        node_id, name, slot_type = spec.get("node"), spec.get("input"), spec.get("type")
        required = spec.get("required", False)
        if not isinstance(node_id, str) or node_id not in prompt:
            raise TemplateError(f"slot {key!r}: node {node_id!r} does not exist")
        inputs = prompt[node_id]["inputs"]
        if not isinstance(name, str) or name not in inputs:
            raise TemplateError(f"slot {key!r}: node {node_id} has no input {name!r}")
        if slot_type not in _TYPE_NAMES:
            raise TemplateError(f"slot {key!r}: type must be one of {', '.join(_TYPE_NAMES)}")
        if not isinstance(required, bool):
            raise TemplateError(f"slot {key!r}: 'required' must be true or false")
        if is_link(inputs[name]):
            raise TemplateError(f"slot {key!r}: node {node_id} input {name!r} is a link, not a value")
        if not _matches(slot_type, inputs[name]):
            raise TemplateError(f"slot {key!r}: the template's default is not a {slot_type}")
        if any(s.node == node_id and s.input == name for s in slots.values()):
            raise TemplateError(f"slot {key!r}: node {node_id} input {name!r} already has a slot")
        slots[key] = Slot(node_id, name, slot_type, required)
    return slots


def _parse_bypasses(prompt: Prompt, slots: Mapping[str, Slot], raw: object) -> tuple[Bypass, ...]:
    if not isinstance(raw, dict):
        raise TemplateError("'bypass' must be an object of {node_id: {through, when}}")
    result = []
    for node_id, spec in raw.items():
        if node_id not in prompt:
            raise TemplateError(f"bypass: node {node_id} does not exist")
        if not isinstance(spec, dict):
            raise TemplateError(f"bypass {node_id}: must be an object")
        through, when = spec.get("through"), spec.get("when")
        if not isinstance(through, str) or not is_link(prompt[node_id]["inputs"].get(through)):
            raise TemplateError(f"bypass {node_id}: 'through' must name one of its link inputs")
        if not isinstance(when, dict) or not when:
            raise TemplateError(f"bypass {node_id}: 'when' must be a non-empty object")
        for key, want in when.items():
            if key not in slots:
                raise TemplateError(f"bypass {node_id}: condition on {key!r}, which is not a slot")
            if want is not None and not _matches(slots[key].type, want):
                raise TemplateError(f"bypass {node_id}: condition on {key!r} is not a {slots[key].type}")
        for other_id, node in prompt.items():
            for value in node["inputs"].values():
                if is_link(value) and value[0] == node_id and value[1] != 0:
                    raise TemplateError(f"bypass {node_id}: node {other_id} uses an output other than 0")
        result.append(Bypass(node_id, through, dict(when)))
    return tuple(result)


def _check_values(template: Template, values: Mapping[str, object]) -> dict[str, Scalar | None]:
    checked: dict[str, Scalar | None] = {}
    for key, value in values.items():
        slot = template.slots.get(key)
        if slot is None:
            raise SlotValueRejected(
                f"template {template.name!r} has no slot {key!r} (slots: {', '.join(sorted(template.slots))})"
            )
        if value is None:
            checked[key] = None
            continue
        if not isinstance(value, str | int | float):  # lists would be read as node links
            raise SlotValueRejected(f"{key} must be a single {slot.type} value, not {type(value).__name__}")
        if not _matches(slot.type, value):
            raise SlotValueRejected(f"{key} must be a finite {slot.type}, not {value!r:.40}")
        checked[key] = float(value) if slot.type == "float" else value
    missing = sorted(k for k, s in template.slots.items() if s.required and checked.get(k) is None)
    if missing:
        raise SlotValueRejected(f"template {template.name!r} needs a value for {', '.join(missing)}")
    return checked


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise SlotValueRejected(
            "filename_prefix must be up to 4 '/'-separated names of letters, digits, '_' and '-'"
        )
    return prefix


def _check_loras(template: Template, loras: Sequence[LoraLike]) -> list[tuple[str, float, float]]:
    if not loras:
        return []
    if not template.supports_loras:
        raise SlotValueRejected(f"template {template.name!r} does not take LoRAs")
    chain: list[tuple[str, float, float]] = []
    seen: set[str] = set()
    for lora in loras:
        name, s_model, s_clip = lora.name, lora.strength_model, lora.strength_clip
        if not isinstance(name, str) or not name:
            raise SlotValueRejected("a LoRA name must be a non-empty string")
        for label, strength in (("strength_model", s_model), ("strength_clip", s_clip)):
            if not _matches("float", strength):
                raise SlotValueRejected(f"LoRA {name!r}: {label} must be a finite number")
        if name in seen:
            raise SlotValueRejected(f"LoRA {name!r} is listed twice")
        seen.add(name)
        chain.append((name, float(s_model), float(s_clip)))
    return chain


def _rewire(prompt: Prompt, old: tuple[str, int], new: list[Any], skip: Collection[str] = ()) -> None:
    """Point every input linked to output ``old`` at ``new`` instead (nodes in ``skip`` untouched)."""
    for node_id, node in prompt.items():
        if node_id in skip:
            continue
        inputs = node["inputs"]
        for key, value in inputs.items():
            if is_link(value) and value[0] == old[0] and value[1] == old[1]:
                inputs[key] = list(new)


def _bypass(prompt: Prompt, bypass: Bypass) -> None:
    through = prompt[bypass.node]["inputs"][bypass.through]
    del prompt[bypass.node]
    _rewire(prompt, (bypass.node, 0), through)


def _new_ids(prompt: Prompt, count: int) -> list[str]:
    numeric = [int(k) for k in prompt if k.isdecimal()]
    next_id = max(numeric, default=0) + 1
    ids: list[str] = []
    while len(ids) < count:
        if str(next_id) not in prompt:
            ids.append(str(next_id))
        next_id += 1
    return ids


def _chain_loras(prompt: Prompt, source: str, chain: Sequence[tuple[str, float, float]]) -> None:
    ids = _new_ids(prompt, len(chain))
    model: list[Any] = [source, 0]
    clip: list[Any] = [source, 1]
    for position, (node_id, (name, s_model, s_clip)) in enumerate(zip(ids, chain, strict=True), 1):
        prompt[node_id] = {
            "class_type": LORA_LOADER,
            "inputs": {
                "model": model,
                "clip": clip,
                "lora_name": name,
                "strength_model": s_model,
                "strength_clip": s_clip,
            },
            "_meta": {"title": f"LoRA {position}"},
        }
        model, clip = [node_id, 0], [node_id, 1]
    _rewire(prompt, (source, 0), model, skip=ids)
    _rewire(prompt, (source, 1), clip, skip=ids)


def conditioning_target(template: Template, node_id: object) -> str:
    """``node_id`` if it is a node of ``template`` whose ``positive`` and ``negative`` are links."""
    node = template.prompt.get(node_id) if isinstance(node_id, str) else None
    inputs = node["inputs"] if node else {}
    if not (is_link(inputs.get("positive")) and is_link(inputs.get("negative"))):
        raise TemplateError(f"node {node_id!r} has no positive and negative conditioning links")
    return str(node_id)


def _check_target(template: Template, node_id: str | None) -> str:
    try:
        return conditioning_target(template, node_id)
    except TemplateError:
        raise SlotValueRejected(f"template {template.name!r} does not take ControlNets") from None


def _chain_controls(prompt: Prompt, target: str, controls: Sequence[ControlLike]) -> None:
    ids = iter(_new_ids(prompt, 4 * len(controls)))
    positive, negative = prompt[target]["inputs"]["positive"], prompt[target]["inputs"]["negative"]
    for position, control in enumerate(controls, 1):
        load, pre, loader, apply = next(ids), next(ids), next(ids), next(ids)
        prompt[load] = _node("LoadImage", {"image": control.image}, f"ControlNet {position} image")
        image: list[Any] = [load, 0]
        if control.preprocessor is not None:
            if control.preprocessor not in PREPROCESSORS:
                known = ", ".join(PREPROCESSORS)
                raise SlotValueRejected(f"unknown ControlNet preprocessor {control.preprocessor!r} ({known})")
            class_type, extra = PREPROCESSORS[control.preprocessor]
            prompt[pre] = _node(class_type, {"image": image, **extra}, f"ControlNet {position} preprocessor")
            image = [pre, 0]
        prompt[loader] = _node(
            "ControlNetLoader", {"control_net_name": control.model}, f"ControlNet {position}"
        )
        apply_inputs = {
            "positive": positive,
            "negative": negative,
            "control_net": [loader, 0],
            "image": image,
            "strength": float(control.strength),
            "start_percent": float(control.start_percent),
            "end_percent": float(control.end_percent),
        }
        prompt[apply] = _node("ControlNetApplyAdvanced", apply_inputs, f"Apply ControlNet {position}")
        positive, negative = [apply, 0], [apply, 1]
    prompt[target]["inputs"]["positive"] = positive
    prompt[target]["inputs"]["negative"] = negative


def parse_inpaint_model(template: Template, raw: object) -> InpaintModel:
    """The ``inpaint_model`` declaration of a spec: ``{"sampler": "<id>", "vae": [id, n], "pixels":
    [id, n], "mask": [id, n], "noise_mask": true}``; raise :class:`TemplateError`."""
    if not isinstance(raw, dict):
        raise TemplateError("must be an object of sampler, vae, pixels, mask")
    sampler = raw.get("sampler")
    node = template.prompt.get(sampler) if isinstance(sampler, str) else None
    if node is None or not all(
        is_link(node["inputs"].get(k)) for k in ("positive", "negative", "latent_image")
    ):
        raise TemplateError(
            f"'sampler' {sampler!r} must name a node with positive, negative and latent_image links"
        )
    links = {key: _declared_link(template.prompt, key, raw.get(key)) for key in ("vae", "pixels", "mask")}
    noise_mask = raw.get("noise_mask", True)
    if not isinstance(noise_mask, bool):
        raise TemplateError("'noise_mask' must be true or false")
    return InpaintModel(str(sampler), links["vae"], links["pixels"], links["mask"], noise_mask)


def _declared_link(prompt: Prompt, key: str, value: object) -> tuple[str, int]:
    if not (is_link(value) and isinstance(value, list) and isinstance(value[0], str)):
        raise TemplateError(f"{key!r} must be a [node_id, output] link")
    source, index = value
    count = _output_count(prompt[source]["class_type"], None) if source in prompt else 0
    if (
        isinstance(index, bool)
        or not isinstance(index, int)
        or index < 0
        or (count is not None and index >= count)
    ):
        raise TemplateError(f"{key!r} links to no output {index!r} of a node {source!r}")
    return source, index


def _use_inpaint_model(prompt: Prompt, plan: InpaintModel, noise_mask_input: bool) -> None:
    sampler = prompt[plan.sampler]["inputs"]
    old_latent = sampler["latent_image"]
    (node_id,) = _new_ids(prompt, 1)
    inputs: dict[str, Any] = {
        "positive": sampler["positive"],
        "negative": sampler["negative"],
        "vae": list(plan.vae),
        "pixels": list(plan.pixels),
        "mask": list(plan.mask),
    }
    if noise_mask_input:
        inputs["noise_mask"] = plan.noise_mask
    prompt[node_id] = _node(INPAINT_CONDITIONING, inputs, "Inpainting model conditioning")
    sampler["positive"], sampler["negative"], sampler["latent_image"] = (
        [node_id, 0],
        [node_id, 1],
        [node_id, 2],
    )
    _drop_unused(prompt, str(old_latent[0]))


def _drop_unused(prompt: Prompt, start: str) -> None:
    """Remove ``start`` and then its sources while nothing links to them any more."""
    pending = [start]
    while pending:
        node_id = pending.pop()
        if node_id not in prompt or _consumed(prompt, node_id):
            continue
        node = prompt.pop(node_id)
        pending.extend(str(v[0]) for v in node["inputs"].values() if is_link(v))


def _consumed(prompt: Prompt, node_id: str) -> bool:
    return any(is_link(v) and v[0] == node_id for n in prompt.values() for v in n["inputs"].values())


def _node(class_type: str, inputs: dict[str, Any], title: str) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}


def _chain_images(prompt: Prompt, source: str, image_input: str, names: Sequence[str]) -> None:
    ids = _new_ids(prompt, 2 * len(names))
    loader_class = prompt[source]["class_type"]
    image: list[Any] = [source, 0]
    for position, name in enumerate(names, 2):
        load, batch = ids[2 * position - 4], ids[2 * position - 3]
        prompt[load] = {
            "class_type": loader_class,
            "inputs": {**prompt[source]["inputs"], image_input: name},
            "_meta": {"title": f"Image {position}"},
        }
        prompt[batch] = {"class_type": "ImageBatch", "inputs": {"image1": image, "image2": [load, 0]}}
        image = [batch, 0]
    _rewire(prompt, (source, 0), image, skip=ids)
