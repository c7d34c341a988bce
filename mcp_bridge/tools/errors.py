"""The one error map: what the layers refuse becomes an MCP tool error here, and nowhere else.

Each layer raises its own exception with a message for the caller (what was wrong, what is valid):
the tools' own checks :class:`Refused`, the parameters ``ParamRejected``, the graph
``SlotValueRejected``, paths ``PathRejected``, inputs ``InputRejected``/``FetchRefused``, ComfyUI's
validation ``PromptRejected``, peers ``PeerError``, a failed job ``JobFailed``. Every tool is
registered with :func:`as_tool_error` (:class:`~..mcp.toolset.Toolset`), which turns those into the
SDK's ``ToolError`` with the same text; anything else stays an unexpected error (no text leaks).
"""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.mcpserver.exceptions import ToolError

from ..comfyui.backend import PromptRejected
from ..delivery.fetch import FetchRefused
from ..delivery.inputs import InputRejected
from ..delivery.paths import PathRejected
from ..delivery.result import JobFailed
from ..engine.peers import PeerError
from ..specs.graph import SlotValueRejected
from ..specs.params import ParamRejected


class Refused(ValueError):
    """A tool refuses the call; the message says what was wrong and what is valid."""


# Layer exception -> the tool error's text (the exception's own message unless a prefix says where).
MESSAGES: dict[type[Exception], Callable[[Exception], str]] = {
    PromptRejected: lambda exc: f"ComfyUI refused the workflow: {exc}",
    **{
        kind: str
        for kind in (
            Refused,
            ParamRejected,
            SlotValueRejected,
            PathRejected,
            InputRejected,
            FetchRefused,
            PeerError,
            JobFailed,
        )
    },
}


def as_tool_error(exc: BaseException) -> ToolError | None:
    """The tool error for a layer's refusal; None for anything else (a bug: reported as unexpected)."""
    if isinstance(exc, ToolError):
        return exc
    for kind, message in MESSAGES.items():
        if isinstance(exc, kind):
            return ToolError(message(exc))
    return None
