"""generate_batch: several ComfyUI prompts under one call, followed together.

A batch is N ordinary jobs (one per item, each its own ComfyUI prompt, all queued at once), not a new
kind of job: get_job/wait_job/cancel_job work on each item, and the call follows them together —
progress as items done of the total plus the running item's steps; cancelling the call cancels its own
prompts only; an item that fails is reported with its reason while the others are returned. Every
item is validated (by generate_image's own arguments model) before anything is queued.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..delivery.paths import numbered
from ..delivery.present import present_job
from ..delivery.result import JobFailed, Presented
from ..engine.jobs import Job
from ..mcp.toolset import Toolset
from ..media.contact_sheet import fit_budget
from ..specs import params
from ..specs.arguments import ToolArguments
from .context import session_of
from .errors import Refused
from .pipeline import GENERATES, submit_spec
from .results import to_result
from .services import Services

TOOL = "generate_batch"
BASE_TOOL = "generate_image"
Sweepable = Literal["seed", "cfg_scale", "steps", "sampler", "lora_strength"]
_PATTERN = re.compile(r"\{(index|seed)\}")
_OWN = ("prompt", "seed", "output_path", "overwrite")  # set per item by the batch


class Sweep(BaseModel):
    """One parameter taking each of ``values`` in turn (for every prompt and variation)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    parameter: Sweepable = Field(
        description="seed, cfg_scale, steps, sampler, or lora_strength (strength_model and strength_clip "
        "of every LoRA in arguments.loras)"
    )
    values: list[int | float | str] = Field(min_length=1, max_length=256)


class BatchArguments(BaseModel):
    """Arguments of generate_batch."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    prompts: Annotated[
        list[str],
        Field(min_length=1, max_length=256, description="One item per prompt (x variations x sweep values)."),
    ]
    variations: Annotated[
        int, Field(ge=1, le=256, description="Seeds per prompt: seed, seed+1, ... (default 1).")
    ] = 1
    seed: Annotated[
        int | None, Field(ge=0, le=params.MAX_SEED, description="First seed; omit for a random one.")
    ] = None
    sweep: Sweep | None = None
    arguments: Annotated[
        dict[str, Any],
        Field(
            description="Any other generate_image argument, the same for every item (width, height, "
            "steps, model, loras, controlnets, ...)."
        ),
    ] = {}
    output_path: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=params.PATH_MAX_CHARS,
            description="Also write the files: a pattern with {index} (1, 2, ...) and/or {seed}, e.g. "
            "out/{index}_{seed}.png; without them the files are numbered name_1.png, name_2.png, ...",
        ),
    ] = None
    overwrite: bool = False


def add_batch_tool(toolset: Toolset, services: Services) -> None:
    """Serve generate_batch when generate_image is served."""
    if BASE_TOOL not in services.specs.specs:
        return

    async def call(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        try:
            batch = BatchArguments.model_validate(arguments)
        except ValidationError as exc:
            raise Refused(f"invalid arguments: {params.explain(exc)}") from None
        return await run_batch(services, batch, ctx)

    cap = services.settings.max_batch_items
    toolset.add_spec_tool(
        TOOL,
        call,
        schema=BatchArguments.model_json_schema(),
        description=f"Make several images in one call: every prompt x variations (seeds) x sweep values is "
        f"one item, at most {cap}, each queued as its own ComfyUI prompt. Returns all items in order with "
        "their seeds and parameters; failed items say why. Same image arguments as generate_image.",
        title="Generate a batch of images",
        annotations=GENERATES,
    )


def expand(services: Services, batch: BatchArguments) -> list[tuple[ToolArguments, dict[str, Any]]]:
    """Every item's validated arguments and what varies in it; raise Refused before anything runs."""
    sweep = batch.sweep.values if batch.sweep else [None]
    count = len(batch.prompts) * batch.variations * len(sweep)
    cap = services.settings.max_batch_items
    if count > cap:
        raise Refused(
            f"{len(batch.prompts)} prompt(s) x {batch.variations} variation(s) x {len(sweep)} sweep value(s) "
            f"is {count} items; at most {cap} (the max_batch_items setting)"
        )
    own = sorted(set(batch.arguments) & set(_OWN))
    if own:
        raise Refused(f"arguments must not set {', '.join(own)}: give them to generate_batch itself")
    model = services.param_models[BASE_TOOL]
    first_seed = params.resolve_seed(batch.seed)
    paths = _paths(batch.output_path, count)
    items = []
    index = 0
    for prompt in batch.prompts:
        for variation in range(batch.variations):
            for value in sweep:
                seed = (first_seed + variation) % (params.MAX_SEED + 1)
                varied: dict[str, Any] = {"prompt": prompt, "seed": seed}
                call = {**batch.arguments, "prompt": prompt, "seed": seed}
                if batch.sweep is not None:
                    varied[batch.sweep.parameter] = value
                    call = _swept(call, batch.sweep.parameter, value)
                    seed = call["seed"]
                if paths is not None:
                    call["output_path"] = _fill(paths[index], index + 1, seed)
                    call["overwrite"] = batch.overwrite
                try:
                    items.append((model.model_validate(call), {"index": index + 1, **varied, "seed": seed}))
                except ValidationError as exc:
                    raise Refused(f"item {index + 1}: invalid arguments: {params.explain(exc)}") from None
                index += 1
    return items


def _swept(call: dict[str, Any], parameter: str, value: Any) -> dict[str, Any]:
    if parameter != "lora_strength":
        return {**call, parameter: value}
    loras = call.get("loras")
    if not isinstance(loras, list) or not loras:
        raise Refused("a lora_strength sweep needs LoRAs in arguments.loras")
    swept = [
        {**x, "strength_model": value, "strength_clip": value} if isinstance(x, dict) else x for x in loras
    ]
    return {**call, "loras": swept}


def _paths(pattern: str | None, count: int) -> list[str] | None:
    if pattern is None:
        return None
    return [pattern] * count if _PATTERN.search(pattern) else numbered(pattern, count)


def _fill(pattern: str, index: int, seed: int) -> str:
    return _PATTERN.sub(lambda m: str(index if m.group(1) == "index" else seed), pattern)


async def run_batch(services: Services, batch: BatchArguments, ctx: Context) -> CallToolResult:
    """Queue every item, follow them together, present them in order."""
    items = expand(services, batch)
    spec = services.specs.specs[BASE_TOOL]
    jobs: list[Job] = []
    try:
        for arguments, _varied in items:
            jobs.append(await submit_spec(services, spec, arguments, ctx))
            jobs[-1].owner = session_of(ctx)
        await _follow_all(services, jobs, ctx)
    except BaseException:  # a refusal midway or the call cancelled: its own prompts go, nobody else's
        for job in jobs:
            if not job.state.finished:
                services.runner.cancel(job)
        raise
    return await _present(services, jobs, [varied for _, varied in items])


async def _follow_all(services: Services, jobs: list[Job], ctx: Context) -> None:
    """Wait for every job, reporting items done of total plus steps; gives up (the rest are reported
    with their job ids) when no item finished for call_wait_s."""
    total = len(jobs)
    sent = -1.0

    for position, job in enumerate(jobs):

        async def report(value: float, _total: float, message: str, position: int = position) -> None:
            nonlocal sent
            done = sum(j.state.finished for j in jobs)
            overall = round(max(position, done - 1) * 100 / total + value / total, 2)
            if overall > sent:
                sent = overall
                await ctx.report_progress(overall, 100.0, f"item {position + 1} of {total}: {message}")

        if not await services.runner.follow(job, report, services.settings.call_wait_s):
            return


async def _present(services: Services, jobs: list[Job], varied: list[dict[str, Any]]) -> CallToolResult:
    content: list[Any] = []
    items: list[dict[str, Any]] = []
    labels: list[str] = []
    for job, item in zip(jobs, varied, strict=True):
        entry: dict[str, Any] = {**item, "job_id": job.id, "state": job.state.value}
        if not job.state.finished:  # not a failure: the item is still on its way
            entry["pending"] = f"still {job.message()}: call wait_job with job_id {job.id!r}"
        else:
            await services.runner.settled(job)
            try:
                result = await present_job(services, job)  # its own summary line gives way to the batch's
            except JobFailed as exc:
                entry["error"] = str(exc)
            else:
                data = result.structured or {}
                entry |= {"images": data.get("images", []), "parameters": _parameters(data)}
                labels += [str(item["index"])] * sum(b.type == "image" for b in result.blocks)
                content += result.blocks
        items.append(entry)
    content, sheet = await fit_budget(content, services.settings.result_inline_bytes, labels)
    failed = [i for i in items if "error" in i]
    pending = [i for i in items if "pending" in i]
    files = sum(len(i.get("images", [])) for i in items)
    done = len(items) - len(failed) - len(pending)
    summary = f"{TOOL}: {done} of {len(items)} item(s) done, {files} file(s)"
    if pending:
        summary += "; not finished yet: " + "; ".join(f"item {i['index']}: {i['pending']}" for i in pending)
    if failed:
        summary += "; failed: " + "; ".join(f"item {i['index']}: {i['error']}" for i in failed)
    if sheet:
        summary += ". Previews over the result budget: one contact sheet, labelled by item number"
    structured = {
        "items": items,
        "count": len(items),
        "failed": len(failed),
        "pending": len(pending),
        "contact_sheet": sheet,
    }
    return to_result(
        Presented(summary + ".", content, structured, is_error=len(failed) == len(items)),
    )


def _parameters(data: dict[str, Any]) -> dict[str, Any]:
    skip = {"job_id", "state", "images", "timings", "save_error", "arguments", "files_omitted"}
    return {k: v for k, v in data.items() if k not in skip}
