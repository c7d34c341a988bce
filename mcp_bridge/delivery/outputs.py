"""Where a generation call's results are also written: the caller's ``output_path``.

Checked before anything is queued (:func:`plan_outputs`), written by the job's delivery when the job
ends (:func:`delivery`, run by the engine whether or not a client still waits), inside ComfyUI's
output folder, the configured ``output_roots`` and — on a loopback-only ComfyUI — the roots the MCP
client declared. The delivery also removes the job's staged input copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from ..addresses import listens_beyond_loopback
from ..comfyui.artifacts import Artifact
from ..engine.jobs import Job, JobState
from ..media import images
from ..media.artifacts import encode_for, suffixes_for
from .host import DeliveryHost
from .inputs import protected_folders, remove_staged
from .paths import IMAGE_SUFFIXES, PathPolicy, PathRejected, numbered, safe_write

log = logging.getLogger("comfyui_mcp_bridge")

ROOTS_HINT = (
    "Relative paths start in your client's first root folder if it declares roots, else in ComfyUI's "
    "output folder. To allow another folder, add it to output_roots in the MCP panel or the "
    "comfyui-mcp-bridge.json settings file"
)


@dataclass(frozen=True)
class OutputPlan:
    """Where a call's results will also be written: checked before queueing, used after the job."""

    requested: str
    overwrite: bool
    suffixes: tuple[str, ...]
    base_dir: str  # relative paths start here: the client's first root, else ComfyUI's output folder
    client_roots: tuple[str, ...]


def output_policy(
    services: DeliveryHost, client_roots: tuple[str, ...] = (), suffixes: Iterable[str] = IMAGE_SUFFIXES
) -> PathPolicy:
    """Where callers may write: ComfyUI's output folder, the configured roots, the client's roots."""
    roots = [services.comfy.output_directory(), *services.settings.output_roots, *client_roots]
    return PathPolicy(roots, deny=protected_folders(services.comfy), hint=ROOTS_HINT, suffixes=suffixes)


def output_suffixes(kinds: Iterable[str] | None) -> tuple[str, ...]:
    """The ``output_path`` endings results of these kinds can be written as (None: any kind)."""
    found: list[str] = []
    for kind in kinds if kinds is not None else ("image", "animation", "video"):
        found += [s for s in suffixes_for(kind) if s not in found]  # type: ignore[arg-type]
    return tuple(found)


# Lists the MCP client's roots (their URIs), or raises when the client has none or cannot answer.
ListRoots = Callable[[], Awaitable[Iterable[str]]]


async def client_roots(services: DeliveryHost, list_roots: ListRoots | None) -> tuple[str, ...]:
    """Folders the MCP client declared as its roots, when the settings and ComfyUI's exposure allow.

    Only for a ComfyUI listening on loopback (a remote client's roots are not paths on this machine)
    and only over connections with a back-channel; PathPolicy drops filesystem roots and home folders.
    """
    if list_roots is None or not services.settings.use_client_roots:
        return ()
    if listens_beyond_loopback(services.comfy.server_options().listen):
        return ()
    try:
        listed = await asyncio.wait_for(list_roots(), 5.0)
    except Exception:  # noqa: BLE001 - no back-channel, a slow or failing client: no client roots
        return ()
    found = []
    for root in listed:
        uri = urlsplit(root)
        if uri.scheme == "file" and uri.netloc in ("", "localhost"):
            found.append(url2pathname(uri.path))
    return tuple(found)


async def plan_outputs(
    services: DeliveryHost,
    list_roots: ListRoots | None,
    output_path: str | None,
    count: int,
    overwrite: bool,
    suffixes: tuple[str, ...] = tuple(sorted(IMAGE_SUFFIXES)),
) -> OutputPlan | None:
    """Check ``output_path`` before anything is queued (refused: :class:`PathRejected`; nothing
    written)."""
    if output_path is None:
        return None
    roots = await client_roots(services, list_roots)
    base = roots[0] if roots else services.comfy.output_directory()
    plan = OutputPlan(output_path, overwrite, suffixes, base, roots)
    await asyncio.to_thread(_check_targets, services, plan, count)  # file-system look-ups
    return plan


def _check_targets(services: DeliveryHost, plan: OutputPlan, count: int) -> None:
    # Worker thread: every target resolves inside the allowed folders and is free unless overwriting.
    policy = output_policy(services, plan.client_roots, plan.suffixes)
    for text in numbered(plan.requested, count):
        target = policy.resolve_output(text, plan.base_dir, create_dirs=False)
        if target.exists() and not plan.overwrite:
            raise PathRejected(
                f"output_path {target.name!r} already exists; set overwrite or pick another name"
            )


def write_outputs(services: DeliveryHost, plan: OutputPlan, sources: list[Artifact]) -> list[str]:
    """Write ``sources`` as ``plan`` says (worker thread): re-resolved, folders created now, kept or
    converted to the asked format, written safely; the paths written."""
    policy = output_policy(services, plan.client_roots, plan.suffixes)
    written = []
    for text, artifact in zip(numbered(plan.requested, len(sources)), sources, strict=False):
        target = policy.resolve_output(text, plan.base_dir, create_dirs=True)
        data = encode_for(artifact, services.comfy.file_path(artifact), target.suffix)
        written.append(str(safe_write(target, data, overwrite=plan.overwrite)))
    return written


@dataclass
class Delivery:
    """What a job's delivery did: files written for ``output_path``, and why a write failed."""

    written: list[str] = field(default_factory=list)
    error: str | None = None


Deliver = Callable[[Job], Awaitable[Delivery]]


def delivery(services: DeliveryHost, plan: OutputPlan | None, staged: list[Path]) -> Deliver:
    """The job-end step of a call: write its results as ``plan`` says, remove its staged inputs."""

    async def deliver(job: Job) -> Delivery:
        done = Delivery()
        if plan is not None and job.state is JobState.SUCCEEDED:
            sources = [a for a in job.artifacts if a.folder_type == "output"]
            try:
                done.written = await asyncio.to_thread(write_outputs, services, plan, sources)
            except (PathRejected, images.ImageRejected, OSError) as exc:
                done.error = f"could not write output_path {plan.requested!r}: {_reason(exc)}"
                log.warning("mcp-bridge: job %s: %s", job.id, done.error)
        if staged and not services.settings.keep_staged_inputs:
            await asyncio.to_thread(remove_staged, staged)
        return done

    return deliver


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
