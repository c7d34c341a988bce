"""Every image model family in the generation tools: the model named (or the default one) is recognised
from its file's header, its family's text encoders and VAE are picked, the family's defaults fill what
the caller left out, and the tool's all-in-one graph is rebuilt for the family (``specs/families``).

An all-in-one SD 1.x/2.x/XL checkpoint (or one whose header tells nothing) keeps the tool's own graph,
unchanged. Everything here runs before anything is queued; a refusal says what would fit and what to
install. File reading (headers, folder listings) is blocking: :func:`prepare` runs in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..specs import params
from ..specs.arguments import ToolArguments
from ..specs.families.build import FamilyGraphError, Prompt, Sampling, apply_family
from ..specs.families.catalog import Family, FamilyCatalog, load_families
from ..specs.families.detect import Detection, detect_file
from ..specs.families.plan import FamilyRefused, Plan, make_plan
from ..specs.spec import ToolSpec
from .errors import Refused
from .services import Services

MODEL_FOLDERS = ("checkpoints", "diffusion_models")


@dataclass(frozen=True)
class ImageModel:
    """An installed model file a generation tool may name, with what its header says."""

    name: str
    folder: str
    detection: Detection
    family: Family | None  # the offered family; None: not runnable here (see why)
    why: str | None = None


@dataclass(frozen=True)
class FamilyCall:
    """How one call runs: its plan (None: the tool's own graph), the model file, the arguments with the
    family's defaults, and what the result reports about it."""

    plan: Plan | None
    model: str
    arguments: ToolArguments
    report: dict[str, Any] = field(default_factory=dict)

    def build(self, prompt: Prompt) -> Prompt:
        """The tool's built graph rebuilt for the family (unchanged for the tool's own graph)."""
        if self.plan is None:
            return prompt
        p = self.arguments
        guidance = getattr(p, "cfg_scale", None) if self.plan.family.cfg == "guidance" else None
        try:
            return apply_family(prompt, self.plan, Sampling(guidance=guidance))
        except FamilyGraphError as exc:
            raise Refused(str(exc)) from None


def catalog(services: Services) -> FamilyCatalog:
    """The families this ComfyUI can run (read from its node definitions once)."""
    if services.families is None:
        comfy = services.comfy
        services.families = load_families(
            comfy.node_class_names(), comfy.node_inputs, comfy.comfyui_version()
        )
    return services.families


def advertise(services: Services, spec: ToolSpec, schema: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A spec's advertised schema and description: the one that takes text_encoders and vae
    (generate_image) names the families this ComfyUI runs (one sentence for tools/list)."""
    if not spec.family_files:
        return schema, spec.description
    return schema, f"{spec.description} Families: {', '.join(catalog(services).families)}."


def detect(services: Services, folder: str, name: str) -> Detection:
    path = services.comfy.model_path(folder, name)
    return detect_file(path) if path is not None else Detection("unknown", format="none", marker="no file")


def image_models(services: Services) -> list[ImageModel]:
    """Every checkpoint, and every diffusion model of an image family (runnable or not), with its family."""
    families, found = catalog(services), []
    for folder in MODEL_FOLDERS:
        for name in services.comfy.model_files(folder):
            seen = detect(services, folder, name)
            family = families.for_detected(seen.family)
            unoffered = families.unoffered_for(seen.family)
            if folder == "diffusion_models" and family is None and unoffered is None:
                continue  # a video, audio or unknown model: not for the image tools
            if family is not None and folder not in family.folders:
                unoffered = (family, f"{family.title} is not run from models/{folder} here")
                family = None
            found.append(ImageModel(name, folder, seen, family, unoffered[1] if unoffered else None))
    return found


def runnable(models: list[ImageModel]) -> list[ImageModel]:
    """The models a call may default to: checkpoints (as ever) and diffusion models of offered families."""
    return [m for m in models if m.folder == "checkpoints" or m.family is not None]


def prepare(services: Services, spec: ToolSpec, p: ToolArguments) -> FamilyCall:
    """The model a call of a family spec runs, its family's files and defaults (worker thread)."""
    model = _choose(services, spec, getattr(p, spec.families or "model"))
    family, seen = model.family, model.detection.family
    if family is None and (model.why or (seen is not None and model.folder == "diffusion_models")):
        raise Refused(f"{model.name} cannot run here: {model.why}")
    if family is None and seen is not None and model.detection.role == "checkpoint":
        raise Refused(
            f"{model.name} is a {seen} checkpoint (its header says so): not an image model these tools run"
        )
    if family is None or family.checkpoint_graph:  # the tool's own graph, as before
        return FamilyCall(None, model.name, p, {"family": family.id} if family else {})
    _refuse_controlnets(p, family)
    try:
        plan = make_plan(
            family,
            model.name,
            model.folder,
            model.detection,
            _files(services, "text_encoders"),
            _files(services, "vae"),
            getattr(p, "text_encoders", None),
            getattr(p, "vae", None),
        )
    except FamilyRefused as exc:
        raise Refused(str(exc)) from None
    arguments, defaulted = _with_defaults(services, p, family)
    return FamilyCall(plan, model.name, arguments, _report(plan, p, arguments, defaulted))


def _choose(services: Services, spec: ToolSpec, wanted: str | None) -> ImageModel:
    models = image_models(services)
    names = [m.name for m in models]
    wanted = wanted or services.settings.default_model or None
    try:
        if wanted:
            name = params.check_name("model", wanted, names)
            return next(m for m in models if m.name == name)
        usable = runnable(models)
        if len(usable) == 1:
            return usable[0]
    except params.ParamRejected as exc:
        raise Refused(str(exc)) from None
    if not usable:  # today's words, plus where a split-file model goes
        raise Refused(
            "no checkpoint is installed in ComfyUI's models/checkpoints folder (nor a diffusion model of a "
            "family this ComfyUI runs in models/diffusion_models; list_models says what each needs)"
        )
    shown = ", ".join(m.name for m in usable[:10])
    what = "checkpoints" if all(m.folder == "checkpoints" for m in usable) else "image models"
    raise Refused(f"several {what} are installed; name one with model ({shown})")


def _files(services: Services, folder: str) -> dict[str, Detection]:
    return {name: detect(services, folder, name) for name in services.comfy.model_files(folder)}


def _refuse_controlnets(p: ToolArguments, family: Family) -> None:
    if getattr(p, "controlnets", None):
        raise Refused(
            f"controlnets run with SD 1.x/2.x/XL checkpoints here, not with {family.title} "
            "(its ControlNets need its own nodes): leave controlnets out or name an SD checkpoint"
        )


def _with_defaults(services: Services, p: ToolArguments, family: Family) -> tuple[ToolArguments, list[str]]:
    """``p`` with the family's defaults for the arguments the caller left out."""
    given, fields = p.model_fields_set, type(p).model_fields
    update: dict[str, Any] = {}
    for name, value in family.defaults.items():
        if name in given or name not in fields or fields[name].default is None:
            continue  # set by the caller, not this tool's, or omitted on purpose (img2img keeps the size)
        if name == "sampler" and value not in services.comfy.samplers():
            continue
        if name == "scheduler" and value not in services.comfy.schedulers():
            continue
        update[name] = value
    if not update:
        return p, []
    changed = p.model_copy(update=update)
    if "width" in update or "height" in update:
        try:
            size = [int(getattr(changed, n, None) or 1) for n in ("width", "height", "batch_size")]
            type(p).limits.check_pixels(*size)
        except params.ParamRejected as exc:
            raise Refused(f"{family.title}'s native size: {exc}; give width and height") from None
    return changed, sorted(update)


def _report(plan: Plan, p: ToolArguments, used: ToolArguments, defaulted: list[str]) -> dict[str, Any]:
    family, given = plan.family, p.model_fields_set
    report: dict[str, Any] = {
        "family": family.id,
        "family_files": {
            "model": plan.model,
            "text_encoders": list(plan.encoders) or "the checkpoint's own",
            "vae": plan.vae or "the checkpoint's own",
        },
    }
    if defaulted:
        report["family_defaults"] = {name: getattr(used, name) for name in defaulted}
    unused: dict[str, str] = {}
    cfg = float(getattr(used, "cfg_scale", 0) or 0)
    if "negative_prompt" in given and getattr(p, "negative_prompt", None):
        if family.negative == "zero":
            unused["negative_prompt"] = f"{family.title} takes no negative prompt (ConditioningZeroOut)"
        elif family.cfg == "sampler" and cfg == 1.0:
            unused["negative_prompt"] = "at cfg_scale 1 the sampler ignores the negative prompt"
    if family.cfg == "fixed" and "cfg_scale" in given:
        unused["cfg_scale"] = f"{family.title} samples at cfg 1"
    if family.cfg == "guidance":
        report["guidance"] = cfg
        report.setdefault("notes", []).append(
            f"cfg_scale is {family.guidance}'s guidance; the sampler's cfg is 1"
        )
    loras = getattr(p, "loras", None) or ()
    if family.lora != "LoraLoader" and any("strength_clip" in x.model_fields_set for x in loras):
        unused["loras.strength_clip"] = f"{family.title} LoRAs apply to the model only ({family.lora})"
    if unused:
        report["not_used"] = unused
    if plan.notes:
        report.setdefault("notes", []).extend(plan.notes)
    return report


class ImageModelInfo(BaseModel):
    """An image model the generation tools take: its family, whether it runs now, with which files."""

    name: str
    folder: str
    family: str | None
    runnable: bool
    text_encoders: list[str] | None = None  # None: the checkpoint's own
    vae: str | None = None  # None: the checkpoint's own
    missing: str | None = None  # what to install, and where (or why it cannot run here)


def describe(services: Services) -> list[ImageModelInfo]:
    """For list_models: every image model with its family and files, or what it lacks (worker thread)."""
    encoders, vaes = _files(services, "text_encoders"), _files(services, "vae")
    found = []
    for model in image_models(services):
        family = model.family
        fid = family.id if family else None
        info = ImageModelInfo(name=model.name, folder=model.folder, family=fid, runnable=False)
        if family is None and model.folder == "checkpoints" and model.why is None:
            info.family = seen = model.detection.family
            info.runnable = seen is None  # unknown header: the tool's own all-in-one graph, as ever
            info.missing = (
                None if seen is None else f"its header says {seen}: not an image model the tools run"
            )
        elif family is None:
            info.family, info.missing = model.detection.family, model.why
        elif family.checkpoint_graph:
            info.runnable = True
        else:
            try:
                plan = make_plan(family, model.name, model.folder, model.detection, encoders, vaes)
            except FamilyRefused as exc:
                info.missing = str(exc)
            else:
                info.runnable, info.text_encoders, info.vae = True, list(plan.encoders) or None, plan.vae
        found.append(info)
    return found
