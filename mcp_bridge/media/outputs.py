"""Where a generation call's results are also written: the caller's ``output_path``.

Checked before anything is queued (:func:`plan_outputs`), written once the job succeeded
(:func:`saver`), inside ComfyUI's output folder, the configured ``output_roots`` and — on a
loopback-only ComfyUI — the roots the MCP client declared.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from ..comfyui import adapter
from ..engine.jobs import Job
from ..server.security import listens_beyond_loopback
from ..services import Services
from . import images
from .paths import PathPolicy, PathRejected, numbered, safe_write

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
    base_dir: str  # relative paths start here: the client's first root, else ComfyUI's output folder
    client_roots: tuple[str, ...]


def output_policy(services: Services, client_roots: tuple[str, ...] = ()) -> PathPolicy:
    """Where callers may write: ComfyUI's output folder, the configured roots, the client's roots."""
    roots = [adapter.output_directory(), *services.settings.output_roots, *client_roots]
    deny = [*adapter.protected_directories(), str(Path(__file__).resolve().parents[2])]
    return PathPolicy(roots, deny=deny, hint=ROOTS_HINT)


async def client_roots(services: Services, ctx: Context) -> tuple[str, ...]:
    """Folders the MCP client declared as its roots, when the settings and ComfyUI's exposure allow.

    Only for a ComfyUI listening on loopback (a remote client's roots are not paths on this machine)
    and only over connections with a back-channel; PathPolicy drops filesystem roots and home folders.
    """
    if not services.settings.use_client_roots or listens_beyond_loopback(adapter.server_options().listen):
        return ()
    caps = ctx.client_capabilities
    if caps is None or caps.roots is None:
        return ()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated in 2026-07-28, still used by clients
            listed = await asyncio.wait_for(ctx.request_context.session.list_roots(), 5.0)
    except Exception:  # noqa: BLE001 - no back-channel, a slow or failing client: no client roots
        return ()
    found = []
    for root in listed.roots:
        uri = urlsplit(str(root.uri))
        if uri.scheme == "file" and uri.netloc in ("", "localhost"):
            found.append(url2pathname(uri.path))
    return tuple(found)


async def plan_outputs(
    services: Services, ctx: Context, output_path: str | None, count: int, overwrite: bool
) -> OutputPlan | None:
    """Check ``output_path`` before anything is queued (refused: ToolError; nothing written)."""
    if output_path is None:
        return None
    roots = await client_roots(services, ctx)
    plan = OutputPlan(output_path, overwrite, roots[0] if roots else adapter.output_directory(), roots)
    try:
        await asyncio.to_thread(_check_targets, services, plan, count)  # file-system look-ups
    except PathRejected as exc:
        raise ToolError(str(exc)) from None
    return plan


def _check_targets(services: Services, plan: OutputPlan, count: int) -> None:
    # Worker thread: every target resolves inside the allowed folders and is free unless overwriting.
    policy = output_policy(services, plan.client_roots)
    for text in numbered(plan.requested, count):
        target = policy.resolve_output(text, plan.base_dir, create_dirs=False)
        if target.exists() and not plan.overwrite:
            raise PathRejected(
                f"output_path {target.name!r} already exists; set overwrite or pick another name"
            )


def _write_outputs(services: Services, plan: OutputPlan, sources: list[Path]) -> list[str]:
    # Worker thread: re-resolve (creating folders now), re-encode in the asked format, write safely.
    policy = output_policy(services, plan.client_roots)
    written = []
    for text, source in zip(numbered(plan.requested, len(sources)), sources, strict=False):
        target = policy.resolve_output(text, plan.base_dir, create_dirs=True)
        data = images.encode_for_suffix(source.read_bytes(), target.suffix)
        written.append(str(safe_write(target, data, overwrite=plan.overwrite)))
    return written


def saver(services: Services, plan: OutputPlan | None) -> Any:
    """A job finalizer writing the results as ``plan`` says, once (None without a plan)."""
    if plan is None:
        return None
    lock = asyncio.Lock()
    done: list[str | None] = []

    async def finalize(job: Job, sources: list[Path]) -> list[str | None]:
        async with lock:
            if not done:
                try:
                    done.extend(await asyncio.to_thread(_write_outputs, services, plan, sources))
                except (PathRejected, images.ImageRejected, OSError) as exc:
                    job.meta["save_error"] = str(exc)
                    done.extend([None] * len(sources))
            return list(done) + [None] * (len(sources) - len(done))

    return finalize
