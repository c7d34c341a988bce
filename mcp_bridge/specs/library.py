"""The tool specs the bridge serves: loaded once from ``workflows/tools/``, compiled for the settings.

A broken spec never stops the bridge: it is left out and the reason is logged and kept, like a
workflow template that needs a node class ComfyUI does not have.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .arguments import NodeInputs, ToolArguments, compile_arguments
from .graph import TemplateError, default_folder, load_json, read_workflow_file, restrict
from .params import DEFAULT_LIMITS, DEFAULTS, Defaults, Limits, check_defaults
from .spec import SpecError, ToolSpec, parse_spec
from .writes import WritesRefused, check_writes

log = logging.getLogger("comfyui_mcp_bridge")

BUILT_IN_TOOLS = ("generate_image", "img2img", "inpaint", "outpaint", "upscale_image")


@dataclass(frozen=True)
class SpecLibrary:
    """Usable specs by tool name, and why the others were left out (keyed by file stem)."""

    specs: Mapping[str, ToolSpec] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)


def load_specs(
    folder: Path | None = None,
    *,
    extra_folders: Sequence[Path] = (),
    node_classes: Collection[str] | None = None,
    is_output_node: Callable[[str], bool] = lambda cls: False,
    node_inputs: NodeInputs | None = None,
) -> SpecLibrary:
    """Every ``*.json`` whose ``_bridge`` declares ``inputs`` becomes a tool spec: first those of
    ``folder`` (the shipped ``workflows/``), then those of ``extra_folders`` (the ``tool_folders``
    setting). A spec that could write where the bridge does not allow is left out (:mod:`.writes`;
    ComfyUI's facts ``is_output_node`` and ``node_inputs`` tighten it). Problems are keyed by file path."""
    specs: dict[str, ToolSpec] = {}
    problems: dict[str, str] = {}
    files: list[Path] = []
    for where in (folder or default_folder(), *extra_folders):
        try:
            files += sorted(p for p in where.glob("*.json") if p.is_file())
        except OSError as exc:
            problems[str(where)] = f"cannot list the folder: {exc.strerror or exc}"
    for path in files:
        try:
            data = load_json(read_workflow_file(path))
            if not (isinstance(data, dict) and isinstance(data.get("_bridge"), dict)):
                raise SpecError("not a bridge workflow (no '_bridge' object)")
            if "inputs" not in data["_bridge"]:
                continue  # a plain template: no tool of its own
            spec = parse_spec(path.stem, data)
            if node_classes is not None:
                restrict(spec.template, node_classes)
            check_spec_writes(spec, is_output_node, node_inputs or (lambda cls: None))
        except (SpecError, TemplateError, WritesRefused) as exc:
            problems[str(path)] = str(exc)
            continue
        if spec.name in specs:
            problems[str(path)] = f"tool name {spec.name!r} is already taken by another workflow"
            continue
        specs[spec.name] = spec
    for place, reason in problems.items():
        log.warning("tool spec %s disabled: %s", place, reason)
    ordered = {n: specs[n] for n in BUILT_IN_TOOLS if n in specs} | specs  # built-ins first, as documented
    return SpecLibrary(ordered, problems)


def check_spec_writes(spec: ToolSpec, is_output_node: Callable[[str], bool], node_inputs: NodeInputs) -> None:
    """:func:`.writes.check_writes` on a spec's workflow, whose outputs the bridge names."""
    check_writes(
        spec.template.prompt,
        named=spec.template.save_nodes,
        is_output_node=is_output_node,
        node_inputs=node_inputs,
    )


@dataclass(frozen=True)
class ParamModels:
    """Compiled arguments models by tool name, with the limits and defaults they were built with."""

    models: Mapping[str, type[ToolArguments]]
    limits: Limits
    defaults: Defaults

    def __getitem__(self, tool: str) -> type[ToolArguments]:
        return self.models[tool]

    @property
    def generate_image(self) -> type[ToolArguments]:
        return self.models["generate_image"]

    @property
    def img2img(self) -> type[ToolArguments]:
        return self.models["img2img"]

    @property
    def upscale_image(self) -> type[ToolArguments]:
        return self.models["upscale_image"]


def make_models(
    limits: Limits = DEFAULT_LIMITS,
    defaults: Defaults = DEFAULTS,
    specs: SpecLibrary | None = None,
    node_inputs: NodeInputs | None = None,
) -> ParamModels:
    """Compile every spec for ``limits`` and ``defaults`` (ValueError if a default is out of bounds)."""
    check_defaults(limits, defaults)
    library = specs if specs is not None else load_specs()
    models = {
        name: compile_arguments(spec, limits, defaults, node_inputs) for name, spec in library.specs.items()
    }
    return ParamModels(models, limits, defaults)
