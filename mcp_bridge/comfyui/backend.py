"""The one interface through which tools, the job runner and result code reach ComfyUI.

:class:`~mcp_bridge.comfyui.adapter.Comfy` implements it on a running ComfyUI; tests implement it in
memory. Everything here is plain Python: ComfyUI's wire formats (history entries, node definitions,
queue items) are parsed behind the implementation, never by its callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from .artifacts import Artifact


class PromptRejected(Exception):
    """ComfyUI's own validation refused a workflow; the message names the node, input and reason."""


@dataclass(frozen=True)
class ServerOptions:
    """How ComfyUI was started, as far as the bridge cares (its command-line options)."""

    listen: str  # comma-separated addresses, as ComfyUI's --listen takes them
    port: int
    tls: bool
    cors_origin: str | None  # --enable-cors-header value ("*" when given bare), else None
    user_directory: str


EventKind = Literal[
    "queue_changed", "started", "cached", "executing", "progress", "executed", "failed", "interrupted"
]


@dataclass(frozen=True)
class PromptEvent:
    """One thing ComfyUI said while a prompt ran — or that its queue changed (``queue_changed``)."""

    kind: EventKind
    prompt_id: str | None = None
    node: str | None = None  # executing: None means the prompt is done
    nodes: tuple[str, ...] = ()  # cached: the nodes served from the cache
    step: int | None = None  # progress of the current node
    steps: int | None = None
    error: dict[str, Any] | None = None  # failed/interrupted: {type, message, node_id, node_type}
    artifacts: tuple[Artifact, ...] = ()  # executed: the files the output node wrote (as in history)


@dataclass(frozen=True)
class PromptOutcome:
    """How a prompt ended, read from ComfyUI's history entry, with the files it produced."""

    prompt_id: str
    succeeded: bool
    error: dict[str, Any] | None = None  # as in PromptEvent; type "interrupted" when it was stopped
    artifacts: tuple[Artifact, ...] = ()


class QueueView(NamedTuple):
    """ComfyUI's queue at one instant: running prompt ids and pending ids in execution order (a pair:
    ``running, pending = view``)."""

    running: list[str]
    pending: list[str]


@dataclass(frozen=True)
class NodeInput:
    """One input of a node class as ComfyUI declares it (``INPUT_TYPES``), reduced to what tools use.

    ``type`` is ComfyUI's: ``INT``, ``FLOAT``, ``STRING``, ``BOOLEAN``, ``COMBO`` (a list of
    options) or a link type such as ``MODEL`` or ``IMAGE``.
    """

    type: str
    required: bool = True
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: tuple[str, ...] = ()
    tooltip: str | None = None
    force_input: bool = False  # a socket only: the frontend shows no widget for it
    # The frontend adds a "control after generate" value after it (None: undeclared, the frontend's
    # legacy rule then gives one to INT inputs named seed or noise_seed).
    control_after_generate: bool | None = None
    upload: bool = False  # the frontend adds an upload button (with a value) after it


class ComfyBackend(Protocol):
    """What the bridge needs from ComfyUI."""

    # -- facts about the installation --
    def comfyui_version(self) -> str | None: ...
    def server_options(self) -> ServerOptions: ...
    def device_name(self) -> str: ...
    def input_directory(self) -> str: ...
    def output_directory(self) -> str: ...
    def protected_directories(self) -> list[str]: ...
    def model_files(self, folder: str) -> list[str]: ...
    def is_inpainting_checkpoint(self, name: str) -> bool:
        """Whether installed checkpoint ``name`` is an inpainting model (reads the file: call off the
        event loop; any read error means False)."""
        ...

    def model_path(self, folder: str, name: str) -> Path | None:
        """The file of installed model ``name`` of ``folder`` (as ``model_files`` lists it), or None."""
        ...

    def upscale_scale(self, name: str) -> int | None:
        """How many times larger installed upscale model ``name`` makes an image, or None when ComfyUI
        cannot load it (loads the model: call off the event loop)."""
        ...

    def samplers(self) -> list[str]: ...
    def schedulers(self) -> list[str]: ...
    def node_class_names(self) -> set[str]: ...
    def node_inputs(self, class_type: str) -> dict[str, NodeInput] | None: ...
    def template_files(self) -> dict[str, Path]:
        """The workflow template files ComfyUI serves under ``/templates/`` (file name -> path): the
        template packages' JSON graphs and ``index.json``. Reads the packages: call off the event loop."""
        ...

    def is_output_node(self, class_type: str) -> bool:
        """Whether ComfyUI runs every node of this class in a prompt as an output (it may write files)."""
        ...

    # -- the queue --
    async def enqueue(self, prompt: dict[str, Any], prompt_id: str) -> int: ...
    async def validate(self, prompt: dict[str, Any], prompt_id: str | None = None) -> list[str]:
        """ComfyUI's own validation of an API prompt: its output node ids, or :class:`PromptRejected`."""
        ...

    def queue_view(self) -> QueueView: ...
    def queue_length(self) -> int: ...
    def cancel(self, prompt_id: str) -> str: ...
    def has_run(self, prompt_id: str) -> bool: ...
    def unwatch(self, prompt_id: str) -> None: ...
    def push_to_pages(self, event: str, data: Any) -> None:
        """Send ``event`` with ``data`` to every open ComfyUI page (its websocket)."""
        ...

    # -- results --
    def file_path(self, artifact: Artifact) -> Path:
        """Where ComfyUI wrote ``artifact`` (its output, temp or input folder)."""
        ...
