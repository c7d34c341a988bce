"""save_output: write a result a job of this bridge made (its ``comfy://output/...`` link) to a path,
under the same rules as ``output_path`` (the result view's "Save as…")."""

from __future__ import annotations

import asyncio

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from ..media import images
from ..media.artifacts import Artifact
from ..media.inputs import RESOURCE_PREFIX
from ..media.outputs import output_suffixes, plan_outputs, write_outputs
from ..media.paths import PathRejected
from ..services import Services
from .toolset import Toolset


def find_artifact(services: Services, uri: str) -> Artifact:
    """The output artifact a job of this bridge made at ``uri`` (ToolError naming what is accepted)."""
    relative = uri.strip().removeprefix(RESOURCE_PREFIX)
    for job in services.registry.all():
        for artifact in job.artifacts:
            if artifact.folder_type == "output" and artifact.relative_path == relative:
                return artifact
    raise ToolError(
        f"{uri[:120]!r} is not a result of this server: pass the comfy://output/... uri of an image, "
        "animation or video a generation tool returned (results are kept for a limited time)."
    )


def register(tools: Toolset, services: Services) -> None:
    """Add save_output."""

    @tools.tool(
        annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    )
    async def save_output(uri: str, output_path: str, ctx: Context, overwrite: bool = False) -> str:
        """Save a result (its comfy://output/... uri) to output_path, as output_path of the generation
        tools does: same folders, suffixes and overwrite rule."""
        artifact = find_artifact(services, uri)
        plan = await plan_outputs(services, ctx, output_path, 1, overwrite, output_suffixes([artifact.kind]))
        assert plan is not None
        try:
            (written,) = await asyncio.to_thread(write_outputs, services, plan, [artifact])
        except (PathRejected, images.ImageRejected, OSError) as exc:
            raise ToolError(f"could not write output_path {output_path!r}: {exc}") from None
        return f"Saved {artifact.filename} as {written}"
