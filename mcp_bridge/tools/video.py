"""``generate_video``: text-to-video and image-to-video with the video models ComfyUI runs in its core nodes.

Each family and mode is one tool spec in ``workflows/video/`` (Wan 2.1, Wan 2.2 TI2V 5B, LTX-Video,
Stable Video Diffusion; ``t2v`` and ``i2v``), whose ``"_bridge"`` entry adds a ``"video"`` object::

    "video": {"family": "wan21", "title": "...", "mode": "t2v|i2v",
              "frames": {"first": 1, "every": 4},             # valid frame counts: first + k * every
              "needs": {"<model input>": {"match": "<regex>", "install": "<file to install>"}}}

One tool serves them all: ``family`` picks the family (omitted: the only one installed), ``input_image``
the mode. A mode is runnable when every model input it needs has a matching file in its ComfyUI model
folder (read through the backend at each call, so files installed later count); ``list_models`` reports
each family with what it needs. The chosen spec then runs through the common pipeline
(:mod:`.pipeline`): staging, seed, bounded wait, job handle, video artifacts. Pure Python: no ComfyUI import.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field, ValidationError

from ..mcp.toolset import Toolset
from ..specs import params
from ..specs.arguments import ToolArguments, compile_arguments
from ..specs.graph import TemplateError, default_folder, load_json, read_workflow_file, restrict
from ..specs.spec import SpecError, ToolSpec, parse_spec
from .errors import Refused
from .pipeline import GENERATES, run_spec
from .services import Services

log = logging.getLogger("comfyui_mcp_bridge")

TOOL = "generate_video"
KINDS = frozenset({"video"})  # what it makes (the result view is bound to it, as to every spec tool)
MODES = {"t2v": "text-to-video", "i2v": "image-to-video"}
MOVING = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi", ".apng")  # never a start image
ModelFiles = Callable[[str], Sequence[str]]


class VideoSpecError(ValueError):
    """A video spec's ``"video"`` entry is broken."""


@dataclass(frozen=True)
class Need:
    """One model file a mode needs: the spec input it fills, its folder, which files fit, what to get."""

    argument: str
    folder: str
    match: re.Pattern[str]
    install: str

    def fits(self, files: Sequence[str]) -> list[str]:
        """The installed files that fit (matched on the lower-cased file name, subfolders ignored)."""
        return [f for f in files if self.match.search(f.rsplit("/", 1)[-1].lower())]

    def wanted(self) -> str:
        return f"{self.argument}: a file like {self.install} in models/{self.folder}"


@dataclass(frozen=True)
class VideoMode:
    """One family in one mode: its spec, compiled arguments model, frame rule and model needs."""

    family: str
    title: str
    mode: str
    spec: ToolSpec
    model: type[ToolArguments]
    first: int
    every: int
    needs: tuple[Need, ...]

    def arguments(self) -> list[str]:
        """What a caller may send for this mode (the model inputs other than ``model`` are picked)."""
        picked = {n.argument for n in self.needs} - {"model"}
        return [i.name for i in self.spec.inputs if i.name not in picked]

    def pick(self, files: ModelFiles) -> tuple[dict[str, str], list[Need]]:
        """The file picked for each need (the first that fits, sorted), and the needs nothing fits."""
        picked: dict[str, str] = {}
        missing: list[Need] = []
        for need in self.needs:
            fitting = need.fits(files(need.folder))
            if fitting:
                picked[need.argument] = fitting[0]
            else:
                missing.append(need)
        return picked, missing

    def check_frames(self, frames: int) -> None:
        if frames < self.first or (frames - self.first) % self.every:
            raise params.ParamRejected(
                f"frames must be {self.first} + a multiple of {self.every} for {self.family} {self.mode} "
                f"({self.first}, {self.first + self.every}, {self.first + 2 * self.every}, ...; got {frames})"
            )

    def bounds(self) -> str:
        """The mode's size, frame and fps rules in a few words (from its compiled schema)."""
        props = self.model.model_json_schema()["properties"]
        width, frames, fps = props["width"], props["frames"], props["fps"]
        rule = f"{self.first}+{self.every}n" if self.every > 1 else f"{self.first}.."
        return (
            f"size x{width.get('multipleOf', 1)}, {width['default']}x{props['height']['default']}; "
            f"frames {rule} up to {frames['maximum']}, {frames['default']}; fps {fps['default']:g}"
        )


@dataclass(frozen=True)
class VideoCatalog:
    """The video modes this ComfyUI has the nodes for, by family, and why others were left out."""

    modes: Mapping[tuple[str, str], VideoMode]
    problems: Mapping[str, str]

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(family for family, _ in self.modes))

    def of(self, family: str) -> list[VideoMode]:
        return [m for (f, _), m in self.modes.items() if f == family]

    def report(self, files: ModelFiles) -> list[VideoFamilyInfo]:
        """For list_models: each family, each mode runnable or not, with its files or what is missing."""
        cached = listing_once(files)
        found = []
        for family in self.families:
            modes = []
            for mode in self.of(family):
                picked, missing = mode.pick(cached)
                modes.append(
                    VideoModeInfo(
                        mode=mode.mode,
                        available=not missing,
                        files=picked if not missing else {},
                        missing=[n.wanted() for n in missing],
                    )
                )
            found.append(VideoFamilyInfo(family=family, title=self.of(family)[0].title, modes=modes))
        return found


def listing_once(files: ModelFiles) -> ModelFiles:
    """``files``, each folder listed at most once (one call reads a folder for several modes)."""
    listed: dict[str, Sequence[str]] = {}

    def cached(folder: str) -> Sequence[str]:
        if folder not in listed:
            listed[folder] = list(files(folder))
        return listed[folder]

    return cached


class VideoModeInfo(BaseModel):
    """One mode of a video family: runnable or not, and with which files."""

    mode: str = Field(description="t2v (text-to-video) or i2v (image-to-video, from input_image)")
    available: bool
    files: dict[str, str] = Field(description="the model files it would use, by role")
    missing: list[str] = Field(description="what to install for it to run")


class VideoFamilyInfo(BaseModel):
    """A video model family generate_video supports on this ComfyUI."""

    family: str
    title: str
    modes: list[VideoModeInfo]


def load_video_catalog(
    node_classes: set[str],
    compile_model: Callable[[ToolSpec], type[ToolArguments]],
    folder: Path | None = None,
) -> VideoCatalog:
    """Every video spec of ``folder`` (default ``workflows/video``) whose nodes ComfyUI has."""
    where = folder or default_folder().parent / "video"
    modes: dict[tuple[str, str], VideoMode] = {}
    problems: dict[str, str] = {}
    for path in sorted(where.glob("*.json")):
        try:
            data = load_json(read_workflow_file(path))
            spec = parse_spec(path.stem, data)
            restrict(spec.template, node_classes)
            mode = _video_mode(spec, data["_bridge"].get("video"), compile_model(spec))
        except (SpecError, TemplateError, VideoSpecError, ValueError) as exc:
            problems[path.stem] = str(exc)
            log.info("video spec %s not offered: %s", path.stem, exc)
            continue
        modes[(mode.family, mode.mode)] = mode
    order = sorted(modes, key=lambda key: (key[0], list(MODES).index(key[1])))  # by family, t2v first
    return VideoCatalog({key: modes[key] for key in order}, problems)


def _video_mode(spec: ToolSpec, raw: object, model: type[ToolArguments]) -> VideoMode:
    if not isinstance(raw, dict):
        raise VideoSpecError("missing the 'video' object (family, title, mode, frames, needs)")
    family, title, mode = raw.get("family"), raw.get("title"), raw.get("mode")
    if not (isinstance(family, str) and isinstance(title, str) and mode in MODES):
        raise VideoSpecError("'video' needs a family, a title and a mode (t2v or i2v)")
    frames = raw.get("frames") or {}
    first, every = frames.get("first", 1), frames.get("every", 1)
    if not (isinstance(first, int) and isinstance(every, int) and first >= 1 and every >= 1):
        raise VideoSpecError("'frames' is {first, every}: positive integers")
    for name in ("frames", "fps", "width", "height"):
        if spec.input(name) is None:
            raise VideoSpecError(f"a video spec has a {name!r} input")
    if (mode == "i2v") != (spec.input("input_image") is not None):
        raise VideoSpecError("an i2v spec has an input_image input, a t2v spec none")
    needs = []
    for argument, need in (raw.get("needs") or {}).items():
        item = spec.input(argument)
        if item is None or item.folder is None or not isinstance(need, dict):
            raise VideoSpecError(f"need {argument!r} is not a model input of the spec")
        try:
            pattern = re.compile(str(need["match"]))
        except (KeyError, re.error) as exc:
            raise VideoSpecError(f"need {argument!r}: 'match' must be a regular expression ({exc})") from None
        needs.append(Need(argument, item.folder, pattern, str(need.get("install", ""))))
    if not any(n.argument == "model" for n in needs):
        raise VideoSpecError("'needs' names the 'model' input")
    return VideoMode(family, title, str(mode), spec, model, first, every, tuple(needs))


# -- the tool --


def video_schema(catalog: VideoCatalog) -> dict[str, Any]:
    """The advertised arguments: every mode's, together (bounds differ by family: see description)."""
    props: dict[str, Any] = {
        "family": {
            "type": "string",
            "enum": catalog.families,
            "description": "The model family; omitted: the only one installed for the mode (list_models).",
        },
        "prompt": {"type": "string", "description": "What the video shows and how it moves (not for svd)."},
        "negative_prompt": {"type": "string", "description": "What to avoid (not for svd)."},
        "input_image": {
            "type": "string",
            "description": "A still to animate (image-to-video), in the input_image forms of "
            "generate_image's tools; omitted: text-to-video.",
        },
        "width": {"type": "integer", "description": "Frame width (multiple of the family's step)."},
        "height": {"type": "integer", "description": "Frame height (multiple of the family's step)."},
        "frames": {
            "type": "integer",
            "description": "Number of frames (the family's rule: see description).",
        },
        "fps": {"type": "number", "minimum": 1, "maximum": 60, "description": "Frames per second, 1 to 60."},
        "steps": {"type": "integer", "minimum": 1, "description": "Sampler steps."},
        "cfg_scale": {"type": "number", "minimum": 0, "maximum": 30, "description": "Guidance scale."},
        "seed": {"type": "integer", "minimum": 0, "description": "Random when omitted; always reported."},
        "motion": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1023,
            "description": "svd only: how much moves.",
        },
        "model": {"type": "string", "description": "The family's model file (default: the first that fits)."},
        "output_path": {
            "type": "string",
            "description": "Also write the video here: .mp4, or .webm, .webp, .gif (converted).",
        },
        "overwrite": {"type": "boolean", "description": "Replace an existing output_path."},
    }
    return {"type": "object", "properties": props, "additionalProperties": False}


def video_description(catalog: VideoCatalog, files: ModelFiles) -> str:
    """What the tool does, each family's rules, and what is installed now (at start)."""
    lines = [
        "A short MP4 from prompt (text-to-video) or from input_image, a still (image-to-video), with a "
        "video model ComfyUI runs natively. Renders take minutes: follow the job id with wait_job. Per "
        "family: size step, default size; frames rule up to the most, default; fps default."
    ]
    for family in catalog.families:
        modes = catalog.of(family)
        rules: dict[str, list[str]] = {}
        for mode in modes:
            rules.setdefault(mode.bounds(), []).append(mode.mode)
        told = "; ".join(f"{' and '.join(names)}: {rule}" for rule, names in rules.items())
        lines.append(f"- {family} ({modes[0].title}) {told}.")
    cached = listing_once(files)
    runnable = [f"{f} {m}" for (f, m), mode in catalog.modes.items() if not mode.pick(cached)[1]]
    if runnable:
        lines.append("Installed at start: " + ", ".join(runnable) + ". list_models shows what each needs.")
    else:
        lines.insert(
            0,
            "Unavailable: no video model is installed (list_models says which files each family needs; "
            "they are found when installed, no restart needed).",
        )
    return "\n".join(lines)


def add_video_tool(toolset: Toolset, services: Services, catalog: VideoCatalog) -> None:
    """Serve ``generate_video`` when ComfyUI has the nodes of at least one video family."""
    if not catalog.modes:
        return
    comfy = services.comfy

    async def call(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        mode, values = await asyncio.to_thread(choose, catalog, comfy.model_files, arguments)
        try:
            parsed = mode.model.model_validate(values)
        except ValidationError as exc:
            raise Refused(f"invalid arguments for {mode.family} {mode.mode}: {params.explain(exc)}") from None
        mode.check_frames(parsed.frames)  # type: ignore[attr-defined]
        return await run_spec(services, mode.spec, parsed, ctx)

    toolset.add_spec_tool(
        TOOL,
        call,
        schema=video_schema(catalog),
        description=video_description(catalog, comfy.model_files),
        title="Generate a video",
        annotations=GENERATES,
    )


def choose(
    catalog: VideoCatalog, files: ModelFiles, arguments: dict[str, Any]
) -> tuple[VideoMode, dict[str, Any]]:
    """The mode a call runs and the arguments for its model (worker thread: lists model folders).

    Raises :class:`~.errors.Refused` for a family that is unknown, not installed or not for this mode, and for
    arguments the family does not take.
    """
    values = dict(arguments)
    family = values.pop("family", None)
    still = values.get("input_image")
    mode_name = "t2v" if still is None else "i2v"
    if isinstance(still, str) and still.strip().lower().endswith(MOVING):
        raise Refused(
            f"input_image is a video ({still[-60:]!r}); generate_video starts from a still image (png, jpeg "
            "or webp): save one frame of it as an image first"
        )
    if family is not None and family not in catalog.families:
        shown = family if isinstance(family, str) else type(family).__name__
        raise Refused(
            f"unknown family {str(shown)[:40]!r}; this ComfyUI supports {', '.join(catalog.families)}"
        )
    cached = listing_once(files)
    candidates = [m for (f, n), m in catalog.modes.items() if n == mode_name and family in (None, f)]
    if not candidates:
        other = "an input_image (image-to-video only)" if mode_name == "t2v" else "no input_image"
        raise Refused(f"{family} does no {MODES[mode_name]}: it needs {other}")
    runnable = [m for m in candidates if not m.pick(cached)[1]]
    if not runnable:
        raise Refused(_not_installed(catalog, candidates, cached, family))
    if family is None and len(runnable) > 1:
        names = ", ".join(m.family for m in runnable)
        raise Refused(
            f"several video families can do {MODES[mode_name]} here ({names}): name one with family"
        )
    mode = runnable[0]
    allowed = set(mode.arguments()) | {"output_path", "overwrite"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise Refused(
            f"{mode.family} {mode.mode} does not take {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(allowed))}"
        )
    picked, _ = mode.pick(cached)
    return mode, {**picked, **values}


def _not_installed(
    catalog: VideoCatalog, candidates: list[VideoMode], files: ModelFiles, family: str | None
) -> str:
    what = MODES[candidates[0].mode]
    if family is not None:
        missing = candidates[0].pick(files)[1]
        return f"{family} {what} is not installed; it needs " + "; ".join(n.wanted() for n in missing)
    lines = [
        f"no video model for {what} is installed; supported: {', '.join(catalog.families)}. Install one:"
    ]
    for mode in candidates:
        lines.append(f"{mode.family} ({mode.title}): " + "; ".join(n.wanted() for n in mode.needs))
    return "\n".join(lines)


def compiler(services: Services) -> Callable[[ToolSpec], type[ToolArguments]]:
    """Compile a video spec with the configured limits and defaults and ComfyUI's node definitions."""
    models = services.param_models
    return lambda spec: compile_arguments(spec, models.limits, models.defaults, services.comfy.node_inputs)
