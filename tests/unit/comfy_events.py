"""Feed the job registry ComfyUI's events and history entries the way the adapter reads them."""

from __future__ import annotations

from typing import Any

from mcp_bridge.comfyui.adapter import read_event, read_outcome
from mcp_bridge.comfyui.artifacts import Artifact
from mcp_bridge.engine.jobs import JobRegistry


def feed(registry: JobRegistry, event: str, data: dict[str, Any]) -> None:
    """Hand the registry one ComfyUI ``send_sync`` event."""
    parsed = read_event(event, data)
    assert parsed is not None, event
    registry.on_event(parsed)


def finish(
    registry: JobRegistry,
    prompt_id: str,
    entry: dict[str, Any] | None,
    artifacts: list[Artifact] | None = None,
) -> None:
    """Hand the registry a prompt's end, read from its history entry."""
    registry.on_done(read_outcome(prompt_id, entry, artifacts))
