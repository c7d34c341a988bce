"""The result of a finished job as a typed value: its own fields, then the caller's values.

A tool result's structured content is built from a :class:`JobResult`, never by merging dicts: the
job's own fields (:data:`~..specs.spec.RESULT_FIELDS`: ``job_id``, ``prompt_ids``, ``state``,
``images``, ``timings``, ...) always win. The values the call ran with (seed, width, model, a published
tool's arguments) are under ``arguments``; for the clients written before that they are also repeated
at the top level, except under a name the result uses itself.

A result must fit in what an MCP client reads in one message: the SDK's client reads at most 1 MiB per
Server-Sent Event, the JSON-RPC envelope included (:data:`RESULT_MAX_BYTES` leaves room for it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..specs.spec import RESULT_FIELDS

# What an SDK client reads in one SSE event (mcp.shared._httpx_utils: max_event_size), less room for
# the JSON-RPC envelope, the event's framing and JSON escaping differences.
RESULT_MAX_BYTES = 1024 * 1024 - 32 * 1024


@dataclass(frozen=True)
class Timings:
    """Seconds a job waited in ComfyUI's queue, ran, and took in all."""

    queued_s: float
    run_s: float
    total_s: float


@dataclass
class JobResult:
    """What a finished job returns in its structured content."""

    job_id: str
    prompt_ids: list[str]  # ComfyUI's ids of the job's prompts (its queue and history)
    state: str
    files: list[dict[str, Any]]  # one entry per output file, in node order (``images`` on the wire)
    timings: Timings
    arguments: Mapping[str, Any] = field(default_factory=dict)  # the values the call ran with
    save_error: str | None = None  # output_path could not be written
    contact_sheet: bool = False  # the previews were replaced by one labelled sheet
    files_omitted: int = 0  # files left out of ``images`` to keep the result within RESULT_MAX_BYTES

    def structured(self) -> dict[str, Any]:
        """The structured content: own fields first and never shadowed, then the caller's values."""
        data: dict[str, Any] = {
            "job_id": self.job_id,
            "prompt_ids": list(self.prompt_ids),
            "state": self.state,
            "images": self.files,
            "timings": asdict(self.timings),
        }
        data.update((k, v) for k, v in self.arguments.items() if k not in RESULT_FIELDS)
        data["arguments"] = dict(self.arguments)
        if self.save_error is not None:
            data["save_error"] = self.save_error
        if self.contact_sheet:
            data["contact_sheet"] = True
        if self.files_omitted:
            data["files_omitted"] = self.files_omitted
        return data


@dataclass(frozen=True)
class Preview:
    """A small image inline (base64): MCP's ``image`` content."""

    type: str
    data: str
    mime_type: str

    def wire(self) -> dict[str, Any]:
        return {"type": "image", "data": self.data, "mimeType": self.mime_type}


@dataclass(frozen=True)
class FileLink:
    """A link to a full file (``comfy://``): MCP's ``resource_link`` content."""

    uri: str
    name: str
    mime_type: str
    description: str
    size: int | None
    type: str = "resource_link"

    def wire(self) -> dict[str, Any]:
        data = {"type": self.type, "uri": self.uri, "name": self.name, "mimeType": self.mime_type}
        data["description"] = self.description
        return data if self.size is None else {**data, "size": self.size}


Block = Preview | FileLink


@dataclass
class Presented:
    """A tool's answer, free of any MCP SDK type: a summary line, blocks, structured content, and
    whether it reports an error (the tool layer turns it into the SDK's ``CallToolResult``)."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    structured: dict[str, Any] | None = None
    is_error: bool = False

    def size(self) -> int:
        """Bytes of this answer serialized as MCP sends it (compact JSON, UTF-8)."""
        wire: dict[str, Any] = {
            "content": [{"type": "text", "text": self.text}, *(b.wire() for b in self.blocks)],
            "isError": self.is_error,
        }
        if self.structured is not None:
            wire["structuredContent"] = self.structured
        return len(json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode())


class JobFailed(Exception):
    """A job did not succeed (failed in ComfyUI, cancelled, interrupted); the message says why."""
