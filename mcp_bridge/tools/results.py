"""A job's answer as the MCP SDK's result: every tool and get_job/wait_job present jobs through here."""

from __future__ import annotations

from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from ..delivery import present as presenter
from ..delivery.result import Block, FileLink, Presented
from ..engine.jobs import Job
from .services import Services


def to_result(answer: Presented) -> CallToolResult:
    """The SDK's ``CallToolResult`` of a presented answer (same text, blocks and structured content)."""
    return CallToolResult(
        content=[TextContent(type="text", text=answer.text), *(_block(b) for b in answer.blocks)],
        structured_content=answer.structured,
        is_error=answer.is_error,
    )


def _block(block: Block) -> ImageContent | ResourceLink:
    if isinstance(block, FileLink):
        return ResourceLink(
            type="resource_link",
            uri=block.uri,
            name=block.name,
            mime_type=block.mime_type,
            description=block.description,
            size=block.size,
        )
    return ImageContent(type="image", data=block.data, mime_type=block.mime_type)


async def present(services: Services, job: Job) -> CallToolResult:
    """Any job as a tool's result: still going, or its result (a failed job raises ``JobFailed``)."""
    return to_result(await presenter.present(services, job))


async def present_job(services: Services, job: Job) -> CallToolResult:
    """A finished job's result (a failed job raises ``JobFailed``)."""
    return to_result(await presenter.present_job(services, job))
