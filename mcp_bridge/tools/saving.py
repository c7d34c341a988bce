"""save_output: write a result a job of this bridge made (its ``comfy://<instance>/output/...`` link) to
a path, under the same rules as ``output_path`` (the result view's "Save as…"). A peer's result is saved
by that peer, on its disk."""

from __future__ import annotations

import asyncio

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from ..comfyui.artifacts import Artifact
from ..delivery.outputs import output_suffixes, plan_outputs, write_outputs
from ..delivery.paths import PathRejected
from ..engine.ids import parse_output_link
from ..mcp.toolset import Toolset
from ..media import images
from .context import roots_of
from .errors import Refused
from .forwarding import forward_to
from .services import Services

NOT_A_RESULT = (
    "{uri!r} is not a result of this server: pass the comfy://.../output/... uri of an image, "
    "animation or video a generation tool returned (results are kept for a limited time)."
)


def locate(services: Services, uri: str) -> tuple[str | None, str]:
    """``(owner, subfolder/file)`` of the result at ``uri``: owner is the peer instance that made it,
    None when it is this instance's (Refused naming what is accepted when ``uri`` is no output link)."""
    link = parse_output_link(uri)
    if link is None:
        raise Refused(NOT_A_RESULT.format(uri=uri[:120]))
    instance, relative = link
    return (None if instance in (None, services.runner.instance_id) else instance), relative


def find_artifact(services: Services, relative: str, uri: str) -> Artifact:
    """The output artifact a job of this bridge made at ``relative`` (Refused naming ``uri``)."""
    for job in services.registry.all():
        for artifact in job.artifacts:
            if artifact.folder_type == "output" and artifact.relative_path == relative:
                return artifact
    raise Refused(NOT_A_RESULT.format(uri=uri[:120]))


def register(tools: Toolset, services: Services) -> None:
    """Add save_output."""

    @tools.tool(
        annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    )
    async def save_output(
        uri: str, output_path: str, ctx: Context, overwrite: bool = False
    ) -> CallToolResult:
        """Save a result (its comfy://... uri) to output_path, with the rules of output_path."""
        owner, relative = locate(services, uri)
        if owner is not None:
            arguments = {"uri": uri, "output_path": output_path, "overwrite": overwrite}
            return await forward_to(services, ctx, owner, f"Result {uri[:120]!r}", "save_output", arguments)
        artifact = find_artifact(services, relative, uri)
        plan = await plan_outputs(
            services, roots_of(ctx), output_path, 1, overwrite, output_suffixes([artifact.kind])
        )
        assert plan is not None
        try:
            (written,) = await asyncio.to_thread(write_outputs, services, plan, [artifact])
        except (PathRejected, images.ImageRejected, OSError) as exc:
            raise Refused(f"could not write output_path {output_path!r}: {exc}") from None
        return CallToolResult(content=[TextContent(text=f"Saved {artifact.filename} as {written}")])
