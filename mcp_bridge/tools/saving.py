"""save_output: write a result a job of this bridge made (its ``comfy://<instance>/output/...`` link) to
a path, under the same rules as ``output_path`` (the result view's "Save as…"). A peer's result is saved
by that peer, on its disk."""

from __future__ import annotations

import asyncio

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from ..engine.ids import parse_output_link
from ..media import images
from ..media.artifacts import Artifact
from ..media.outputs import output_suffixes, plan_outputs, write_outputs
from ..media.paths import PathRejected
from ..peers import PeerError, forwarded_by
from ..services import Services
from .toolset import Toolset

NOT_A_RESULT = (
    "{uri!r} is not a result of this server: pass the comfy://.../output/... uri of an image, "
    "animation or video a generation tool returned (results are kept for a limited time)."
)


def owner_of(services: Services, uri: str) -> str | None:
    """The peer instance that made the result at ``uri``; None when it is this instance's."""
    link = parse_output_link(uri)
    if link is None:
        raise ToolError(NOT_A_RESULT.format(uri=uri[:120]))
    instance = link[0]
    return None if instance in (None, services.runner.instance_id) else instance


def find_artifact(services: Services, uri: str) -> Artifact:
    """The output artifact a job of this bridge made at ``uri`` (ToolError naming what is accepted)."""
    link = parse_output_link(uri)
    relative = link[1] if link is not None else None
    for job in services.registry.all():
        for artifact in job.artifacts:
            if artifact.folder_type == "output" and artifact.relative_path == relative:
                return artifact
    raise ToolError(NOT_A_RESULT.format(uri=uri[:120]))


def register(tools: Toolset, services: Services) -> None:
    """Add save_output."""

    @tools.tool(
        annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    )
    async def save_output(
        uri: str, output_path: str, ctx: Context, overwrite: bool = False
    ) -> CallToolResult:
        """Save a result (its comfy://.../output/... uri) to output_path, as output_path of the
        generation tools does: same folders, suffixes and overwrite rule."""
        owner = owner_of(services, uri)
        if owner is not None:
            return await forward_save(services, ctx, owner, uri, output_path, overwrite)
        artifact = find_artifact(services, uri)
        plan = await plan_outputs(services, ctx, output_path, 1, overwrite, output_suffixes([artifact.kind]))
        assert plan is not None
        try:
            (written,) = await asyncio.to_thread(write_outputs, services, plan, [artifact])
        except (PathRejected, images.ImageRejected, OSError) as exc:
            raise ToolError(f"could not write output_path {output_path!r}: {exc}") from None
        return CallToolResult(content=[TextContent(text=f"Saved {artifact.filename} as {written}")])


async def forward_save(
    services: Services, ctx: Context, owner: str, uri: str, output_path: str, overwrite: bool
) -> CallToolResult:
    """save_output of a peer's result, made by that peer (a forwarded request is never forwarded)."""
    what = f"Result {uri[:120]!r}"
    if forwarded_by(ctx.headers):
        raise ToolError(
            f"{what} belongs to instance {owner!r}, not this one ({services.runner.instance_id!r})."
        )
    arguments = {"uri": uri, "output_path": output_path, "overwrite": overwrite}
    try:
        peer = services.peers.get(owner, what)
        return await services.peers.call_tool(peer, "save_output", arguments, 0.0, None)
    except PeerError as exc:
        raise ToolError(str(exc)) from None
