"""The one module that touches ComfyUI.

Everything ComfyUI-specific — its modules, its server object, the differences between its versions —
lives here, behind plain-Python functions and types. Other modules never import ComfyUI.
"""

from __future__ import annotations

import inspect
import logging
import math
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import backend, compat, headers
from .artifacts import Artifact, kind_for, mime_for
from .backend import NodeInput, PromptEvent, PromptOutcome, QueueView, ServerOptions

log = logging.getLogger("comfyui_mcp_bridge")

PREVIEW_NODE = "MCPBridgeResultPreview"  # delivery/tensor_previews.ResultPreview, registered by the package


def with_result_previews(prompt: dict[str, Any], prompt_id: str) -> dict[str, Any]:
    """``prompt`` with one preview node per ``SaveImage`` (keyed ``<prompt id>/<node id>``), first in the
    prompt so ComfyUI runs it before the save; unchanged where the node is not registered."""
    import nodes

    if PREVIEW_NODE not in nodes.NODE_CLASS_MAPPINGS:
        return prompt
    added = {
        f"{node_id}-preview": {
            "class_type": PREVIEW_NODE,
            "inputs": {"images": node["inputs"]["images"], "key": f"{prompt_id}/{node_id}"},
        }
        for node_id, node in prompt.items()
        if isinstance(node, dict)
        and node.get("class_type") == "SaveImage"
        and isinstance(node.get("inputs", {}).get("images"), list)
    }
    return {**added, **prompt} if added else prompt


def running_server() -> Any | None:
    """Return ComfyUI's ``PromptServer.instance``, or None outside a running ComfyUI."""
    if "server" not in sys.modules:  # never import ComfyUI's server module ourselves
        return None
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


def comfyui_version() -> str | None:
    """ComfyUI's version string, as its own ``comfyui_version`` module states it."""
    try:
        import comfyui_version
    except ImportError:
        return None
    return str(getattr(comfyui_version, "__version__", "")) or None


def server_options() -> ServerOptions:
    """Read ComfyUI's command-line options and user directory."""
    import folder_paths
    from comfy.cli_args import args

    return ServerOptions(
        listen=str(args.listen),
        port=int(args.port),
        tls=bool(getattr(args, "tls_keyfile", None) and getattr(args, "tls_certfile", None)),
        cors_origin=getattr(args, "enable_cors_header", None),
        user_directory=str(folder_paths.get_user_directory()),
    )


def device_name() -> str:
    """The torch device ComfyUI computes on (e.g. ``cpu``)."""
    try:
        import comfy.model_management as mm

        return str(mm.get_torch_device())
    except Exception:  # noqa: BLE001 - a status field must never break a tool
        return "unknown"


def queue_length() -> int:
    """Prompts running or waiting in ComfyUI's queue."""
    server = running_server()
    if server is None:
        return 0
    return int(server.prompt_queue.get_tasks_remaining())


# --- Folders, models, samplers ---------------------------------------------------------------------

MODEL_KINDS = ("checkpoints", "loras", "upscale_models", "controlnet")


def output_directory() -> str:
    """ComfyUI's output folder."""
    import folder_paths

    return str(folder_paths.get_output_directory())


def input_directory() -> str:
    """ComfyUI's input folder."""
    import folder_paths

    return str(folder_paths.get_input_directory())


def protected_directories() -> list[str]:
    """Folders no caller may write into even inside an allowed root: code ComfyUI would run (custom
    nodes), model folders, the user folder."""
    import folder_paths

    found: list[str] = [str(folder_paths.get_user_directory()), str(folder_paths.models_dir)]
    for kind in ("custom_nodes", *MODEL_KINDS):
        entry = folder_paths.folder_names_and_paths.get(kind)
        if entry:
            found.extend(str(path) for path in entry[0])
    return found


def model_files(kind: str) -> list[str]:
    """Installed model files of one kind (``checkpoints``, ``loras``, ``controlnet``, ...), sorted,
    relative to their model folder (subfolders included, ``/``-separated)."""
    import folder_paths

    if kind not in folder_paths.folder_names_and_paths:
        return []
    return sorted(str(name).replace("\\", "/") for name in folder_paths.get_filename_list(kind))


def is_inpainting_checkpoint(name: str) -> bool:
    """True when checkpoint ``name`` (as ``model_files("checkpoints")`` lists it) is an inpainting
    model, read from its safetensors header (blocking: call off the event loop)."""
    import folder_paths

    try:
        path = folder_paths.get_full_path("checkpoints", name)
    except Exception:  # noqa: BLE001 - an odd name is simply not an inpainting model
        return False
    return path is not None and headers.is_inpainting_checkpoint(Path(path))


def model_path(folder: str, name: str) -> Path | None:
    """Where model file ``name`` of ``folder`` (as :func:`model_files` lists it) is, or None."""
    import folder_paths

    try:
        path = folder_paths.get_full_path(folder, name)
    except Exception:  # noqa: BLE001 - an unknown folder or odd name is simply not there
        return None
    return Path(path) if path else None


_SCALES: dict[tuple[str, int, int], int] = {}  # (path, size, mtime) -> scale
_SCALES_KEPT = 64


def upscale_scale(name: str) -> int | None:
    """The scale of upscale model ``name`` as ComfyUI's UpscaleModelLoader loads it (its state dict
    through spandrel), or None when it cannot be loaded; cached per file version. Blocking: off the loop."""
    path = model_path("upscale_models", name)
    if path is None:
        return None
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _SCALES:
            import comfy.utils
            from spandrel import ModelLoader

            state = comfy.utils.load_torch_file(str(path), safe_load=True)
            if "module.layers.0.residual_group.blocks.0.norm1.weight" in state:  # as the loader node does
                state = comfy.utils.state_dict_prefix_replace(state, {"module.": ""})
            scale = int(ModelLoader().load_from_state_dict(state).scale)
            if len(_SCALES) >= _SCALES_KEPT:
                _SCALES.clear()
            _SCALES[key] = scale
        return _SCALES[key]
    except Exception as exc:  # noqa: BLE001 - any loader failure: the model cannot be used
        log.warning("mcp-bridge: cannot load upscale model %s: %s", name, exc)
        return None


def template_files() -> dict[str, Path]:
    """The JSON files ComfyUI serves under ``/templates/`` (name -> path), chosen as its server does:
    the legacy ``templates`` folder of ``comfyui_workflow_templates`` when it has one (packages before
    0.3), else the asset map of the split packages (media bundles and the core's manifest)."""
    try:
        from app.frontend_management import FrontendManager
    except ImportError:
        return {}
    legacy = getattr(FrontendManager, "legacy_templates_path", None) or getattr(
        FrontendManager, "templates_path", None
    )
    where = legacy() if legacy is not None else None
    folder = Path(where) if where else None
    if folder is not None and folder.is_dir():
        return {p.name: p for p in folder.iterdir() if p.suffix == ".json"}
    asset_map = getattr(FrontendManager, "template_asset_map", None)
    found = (asset_map() if asset_map is not None else None) or {}
    return {str(name): Path(path) for name, path in found.items() if str(name).endswith(".json")}


def samplers() -> list[str]:
    """Sampler names KSampler accepts."""
    import comfy.samplers

    return [str(name) for name in comfy.samplers.KSampler.SAMPLERS]


def schedulers() -> list[str]:
    """Scheduler names KSampler accepts."""
    import comfy.samplers

    return [str(name) for name in comfy.samplers.KSampler.SCHEDULERS]


def artifact_path(artifact: Artifact) -> Path:
    """The file of an artifact in ComfyUI's output, temp or input folder."""
    import folder_paths

    base = folder_paths.get_directory_by_type(artifact.folder_type) or folder_paths.get_output_directory()
    return Path(base) / artifact.subfolder / artifact.filename


def node_class_names() -> set[str]:
    """Every node type ComfyUI has loaded (core and custom)."""
    import nodes

    return {str(name) for name in nodes.NODE_CLASS_MAPPINGS}


def is_output_node(class_type: str) -> bool:
    """Whether ComfyUI runs ``class_type`` as an output node (``OUTPUT_NODE``, as its executor reads it);
    a definition that cannot be read counts as one."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(class_type)
    try:
        return cls is not None and getattr(cls, "OUTPUT_NODE", False) is True
    except Exception:  # noqa: BLE001 - a custom node's broken definition: assume it writes
        return True


def node_inputs(class_type: str) -> dict[str, NodeInput] | None:
    """The inputs a node class declares (``INPUT_TYPES``), or None for an unknown class."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(class_type)
    if cls is None:
        return None
    try:
        declared = cls.INPUT_TYPES()
    except Exception:  # noqa: BLE001 - a custom node's broken definition must not break a tool
        log.warning("mcp-bridge: cannot read the inputs of node class %s", class_type)
        return None
    found: dict[str, NodeInput] = {}
    for section in ("required", "optional"):
        for name, spec in (declared.get(section) or {}).items():
            found[str(name)] = _node_input(spec, section == "required")
    return found


def _node_input(spec: Any, required: bool) -> NodeInput:
    # ComfyUI's forms: (TYPE, {options}), (TYPE,), ([choices], {options}), ("COMBO", {"options": [...]}).
    kind = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
    opts = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}
    choices: tuple[str, ...] = ()
    if isinstance(kind, (list, tuple)):
        choices, kind = tuple(str(c) for c in kind), "COMBO"
    elif kind == "COMBO" and isinstance(opts.get("options"), (list, tuple)):
        choices = tuple(str(c) for c in opts["options"])

    def number(key: str) -> float | None:
        value = opts.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    tooltip = opts.get("tooltip")
    uploads = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "upload")
    return NodeInput(
        type=str(kind),
        required=required,
        default=opts.get("default"),
        minimum=number("min"),
        maximum=number("max"),
        step=number("step"),
        options=choices,
        tooltip=str(tooltip) if isinstance(tooltip, str) else None,
        force_input=bool(opts.get("forceInput")),
        control_after_generate=(
            bool(opts["control_after_generate"]) if "control_after_generate" in opts else None
        ),
        upload=any(bool(opts.get(key)) for key in uploads),
    )


# --- History entries: what a prompt produced --------------------------------------------------------


def artifacts_from_history(entry: dict[str, Any] | None) -> list[Artifact]:
    """Every file a finished prompt's history entry lists, in node order.

    ``images`` come from SaveImage/PreviewImage (stills) and from SaveAnimatedWEBP/SaveAnimatedPNG/
    SaveWEBM/SaveVideo, which add ``animated: (True,)``; ``gifs`` from video custom nodes
    (VideoHelperSuite's VideoCombine), with ``format`` and ``frame_rate``. Malformed records are skipped.
    """
    outputs = (entry or {}).get("outputs")
    if not isinstance(outputs, dict):
        return []
    found: list[Artifact] = []
    for node_id, node_output in outputs.items():
        found.extend(node_artifacts(str(node_id), node_output))
    return found


def node_artifacts(node_id: str, node_output: Any) -> list[Artifact]:
    """The files of one output node's UI output: a history entry's ``outputs[node]``, which is also the
    ``output`` of its ``executed`` event. Malformed records are skipped."""
    if not isinstance(node_output, dict):
        return []
    found: list[Artifact] = []
    animated = _flag(node_output.get("animated"))
    for key, is_animated in (("images", animated), ("gifs", True)):
        records = node_output.get(key)
        for record in records if isinstance(records, (list, tuple)) else ():
            artifact = _artifact(node_id, record, is_animated)
            if artifact is not None:
                found.append(artifact)
    return found


def _flag(value: Any) -> bool:
    # ComfyUI writes the animated flag as a one-element tuple (a list once it went through JSON).
    if isinstance(value, (list, tuple)):
        return any(bool(v) for v in value)
    return bool(value)


def _artifact(node_id: str, record: Any, animated: bool) -> Artifact | None:
    if not isinstance(record, dict):
        return None
    filename = record.get("filename")
    if not isinstance(filename, str) or not filename:
        return None
    fmt = record.get("format")
    rate = record.get("frame_rate")
    return Artifact(
        node_id=node_id,
        kind=kind_for(filename, animated),
        filename=filename,
        subfolder=str(record.get("subfolder") or ""),
        folder_type=str(record.get("type") or "output"),
        mime_type=mime_for(filename),
        format=fmt if isinstance(fmt, str) and fmt else None,
        frame_rate=_rate(rate),
    )


def _rate(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    rate = float(value)
    return rate if math.isfinite(rate) and rate > 0 else None


# --- Queue, events, cancellation ------------------------------------------------------------------

EventSink = Callable[[PromptEvent], None]
DoneSink = Callable[[PromptOutcome], None]  # the history entry is read here, off the loop

# Events whose payload names the prompt they belong to; besides them only "status" (the queue changed)
# is forwarded, without its payload.
_PROMPT_EVENTS = frozenset(
    {
        "execution_start",
        "execution_cached",
        "executing",
        "executed",
        "progress",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
)

# Large fields of execution_error that the bridge does not need (tracebacks, node inputs/outputs).
_BULKY_KEYS = frozenset({"traceback", "current_inputs", "current_outputs"})


_EVENT_KINDS: dict[str, backend.EventKind] = {
    "execution_start": "started",
    "execution_cached": "cached",
    "executing": "executing",
    "progress": "progress",
    "executed": "executed",
    "execution_error": "failed",
    "execution_interrupted": "interrupted",
}


def read_event(event: str, data: dict[str, Any]) -> PromptEvent | None:
    """ComfyUI's ``send_sync`` event as a :class:`PromptEvent` (None for events the bridge ignores)."""
    if event == "status":
        return PromptEvent("queue_changed")
    kind = _EVENT_KINDS.get(event)
    if kind is None:
        return None
    prompt_id = data.get("prompt_id")
    node = data.get("node")
    step, steps = data.get("value"), data.get("max")
    return PromptEvent(
        kind,
        prompt_id=None if prompt_id is None else str(prompt_id),
        node=None if node is None else str(node),
        nodes=tuple(str(n) for n in data.get("nodes") or ()) if kind == "cached" else (),
        step=int(step or 0) if kind == "progress" else None,
        steps=int(steps or 0) if kind == "progress" else None,
        error=_error_from(event, data) if kind in ("failed", "interrupted") else None,
        artifacts=tuple(node_artifacts(str(node), data.get("output"))) if kind == "executed" else (),
    )


def read_outcome(
    prompt_id: str, entry: dict[str, Any] | None, artifacts: list[Artifact] | None = None
) -> PromptOutcome:
    """How a prompt ended, from its history entry (its artifacts parsed from it unless given)."""
    status = (entry or {}).get("status") or {}
    error = None
    for message in status.get("messages") or []:
        if isinstance(message, (list, tuple)) and len(message) == 2:
            event, data = message
            if event in ("execution_error", "execution_interrupted") and isinstance(data, dict):
                error = _error_from(event, data)
                break
    succeeded = status.get("status_str") == "success" and error is None
    if not succeeded and error is None:
        error = {"type": "error", "message": "ComfyUI reported a failure"}
    found = artifacts_from_history(entry) if artifacts is None else artifacts
    return PromptOutcome(prompt_id, succeeded, error, tuple(found))


def _error_from(event: str, data: dict[str, Any]) -> dict[str, Any]:
    if event == "execution_interrupted":
        return {"type": "interrupted", "message": "interrupted", "node_id": data.get("node_id")}
    return {
        "type": str(data.get("exception_type") or "error"),
        "message": str(data.get("exception_message") or "").strip() or "execution failed",
        "node_id": data.get("node_id"),
        "node_type": data.get("node_type"),
    }


class PromptRejected(backend.PromptRejected):
    """ComfyUI's own validation refused a workflow; ``error`` and ``node_errors`` are ComfyUI's."""

    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]) -> None:
        self.error = error
        self.node_errors = node_errors
        super().__init__(describe_validation_error(error, node_errors))


def describe_validation_error(error: dict[str, Any], node_errors: dict[str, Any]) -> str:
    """One readable sentence per problem: which node, which input, why."""
    parts = [str(error.get("message") or error.get("type") or "invalid workflow")]
    for node_id, info in (node_errors or {}).items():
        for err in info.get("errors", []):
            extra = err.get("extra_info") or {}
            where = f"node {node_id} ({info.get('class_type', '?')})"
            if extra.get("input_name"):
                where += f", input '{extra['input_name']}'"
            parts.append(f"{where}: {err.get('message', '')} {err.get('details', '')}".strip())
    return "; ".join(parts)


def _unhooked(_: object) -> None:
    """The sinks before :meth:`Comfy.install_hooks`: nothing is watched yet."""


class Comfy:
    """ComfyUI's queue and event stream as the bridge uses them.

    Construct on ComfyUI's event loop thread. The ``on_event`` and ``on_done`` sinks given to
    :meth:`install_hooks` are always called on that loop (handed over with ``call_soon_threadsafe``
    from ComfyUI's worker thread), and only for prompt ids that were passed to :meth:`watch` — plus
    ``on_event("status", {})`` whenever ComfyUI's queue changed while any prompt is watched.
    """

    def __init__(self, server: Any) -> None:
        import execution

        self.server = server
        self.loop = server.loop
        self._on_event: EventSink = _unhooked
        self._on_done: DoneSink = _unhooked
        self._watched: set[str] = set()
        self._client_id = "mcp-bridge-" + uuid.uuid4().hex
        self._execution = execution
        queue = server.prompt_queue
        params = inspect.signature(type(queue).task_done).parameters
        # Queue items grew a 6th field ("sensitive") together with task_done's process_item parameter.
        self.six_field_items = "process_item" in params
        self._validate = execution.validate_prompt
        self._validate_arity = len(inspect.signature(self._validate).parameters)
        self._original_send_sync: Callable[..., Any] | None = None
        self._original_task_done: Callable[..., Any] | None = None

    # -- facts (the backend interface; module functions do the work) --

    def comfyui_version(self) -> str | None:
        return comfyui_version()

    def device_name(self) -> str:
        return device_name()

    def input_directory(self) -> str:
        return input_directory()

    def output_directory(self) -> str:
        return output_directory()

    def protected_directories(self) -> list[str]:
        return protected_directories()

    def model_files(self, folder: str) -> list[str]:
        return model_files(folder)

    def is_inpainting_checkpoint(self, name: str) -> bool:
        return is_inpainting_checkpoint(name)

    def model_path(self, folder: str, name: str) -> Path | None:
        return model_path(folder, name)

    def upscale_scale(self, name: str) -> int | None:
        return upscale_scale(name)

    def samplers(self) -> list[str]:
        return samplers()

    def schedulers(self) -> list[str]:
        return schedulers()

    def node_class_names(self) -> set[str]:
        return node_class_names()

    def node_inputs(self, class_type: str) -> dict[str, NodeInput] | None:
        return node_inputs(class_type)

    def template_files(self) -> dict[str, Path]:
        return template_files()

    def is_output_node(self, class_type: str) -> bool:
        return is_output_node(class_type)

    def queue_length(self) -> int:
        return int(self.server.prompt_queue.get_tasks_remaining())

    def file_path(self, artifact: Artifact) -> Path:
        return artifact_path(artifact)

    def server_options(self) -> ServerOptions:
        return server_options()

    @property
    def client_id(self) -> str:
        """The synthetic client id our prompts carry (without one ComfyUI emits no execution events)."""
        return self._client_id

    # -- hooks --

    def install_hooks(self, on_event: EventSink, on_done: DoneSink) -> None:
        """Wrap ``PromptServer.send_sync`` and ``PromptQueue.task_done`` (idempotent, removable): the
        watched prompts' events go to ``on_event``, their completions to ``on_done``."""
        if self._original_send_sync is not None:
            return
        self._on_event, self._on_done = on_event, on_done
        server, queue = self.server, self.server.prompt_queue
        original_send = server.send_sync
        original_done = queue.task_done

        def send_sync(event: Any, data: Any, sid: Any = None, *args: Any, **kwargs: Any) -> Any:
            try:
                self._see_event(event, data)
            except Exception:  # noqa: BLE001 - a hook must never raise into ComfyUI
                log.exception("mcp-bridge: event hook failed")
            return original_send(event, data, sid, *args, **kwargs)

        def task_done(item_id: Any, *args: Any, **kwargs: Any) -> Any:
            prompt_id = None
            try:
                running = queue.currently_running.get(item_id)
                prompt_id = running[1] if running is not None else None
            except Exception:  # noqa: BLE001
                log.exception("mcp-bridge: task_done hook failed")
            result = original_done(item_id, *args, **kwargs)
            if prompt_id in self._watched:
                try:
                    # Read in place under the queue's lock (get_history would deep-copy the whole
                    # entry, workflow included, on ComfyUI's worker): the outcome copies what it keeps.
                    with queue.mutex:
                        outcome = read_outcome(prompt_id, queue.history.get(prompt_id))
                    self.loop.call_soon_threadsafe(self._on_done, outcome)
                except Exception:  # noqa: BLE001
                    log.exception("mcp-bridge: completion hook failed")
            return result

        self._original_send_sync, self._original_task_done = original_send, original_done
        server.send_sync = send_sync
        queue.task_done = task_done

    def remove_hooks(self) -> None:
        """Restore ComfyUI's own methods."""
        if self._original_send_sync is None:
            return
        # Our wrappers are instance attributes shadowing the class methods: deleting them restores.
        for obj, name in ((self.server, "send_sync"), (self.server.prompt_queue, "task_done")):
            if name in vars(obj):
                delattr(obj, name)
        self._original_send_sync = self._original_task_done = None

    def _see_event(self, event: Any, data: Any) -> None:
        # Runs on ComfyUI's worker thread (or the loop): cheap checks, a shallow copy, one hand-off.
        if event == "status":  # the queue changed (put, taken, done, deleted): positions move
            if self._watched:
                self.loop.call_soon_threadsafe(self._on_event, PromptEvent("queue_changed"))
            return
        if event not in _PROMPT_EVENTS or not isinstance(data, dict):
            return
        prompt_id = data.get("prompt_id")
        if prompt_id is None and event == "progress":
            prompt_id = getattr(self.server, "last_prompt_id", None)
        if prompt_id not in self._watched:
            return
        payload = {k: v for k, v in data.items() if k not in _BULKY_KEYS}
        payload["prompt_id"] = prompt_id
        parsed = read_event(str(event), payload)
        if parsed is not None:
            self.loop.call_soon_threadsafe(self._on_event, parsed)

    # -- queueing --

    def watch(self, prompt_id: str) -> None:
        """Start forwarding events of ``prompt_id`` (call before it can run)."""
        self._watched.add(prompt_id)

    def unwatch(self, prompt_id: str) -> None:
        """Stop forwarding events of ``prompt_id``."""
        self._watched.discard(prompt_id)

    def push_to_pages(self, event: str, data: Any) -> None:
        """``PromptServer.send_sync`` to every open page (looked up per call: the hooks wrap it)."""
        self.server.send_sync(event, data)

    async def enqueue(self, prompt: dict[str, Any], prompt_id: str) -> int:
        """Validate ``prompt`` with ComfyUI's own checks and put it on the queue; return its number.

        Runs the other extensions' ``on_prompt`` handlers first and applies this ComfyUI's node
        replacements (where it has them), as ``POST /prompt`` does. Must run on ComfyUI's event loop.
        Raises :class:`PromptRejected` when ComfyUI refuses it (nothing queued).
        """
        server = self.server
        request = {"prompt": prompt, "client_id": self._client_id, "prompt_id": prompt_id, "extra_data": {}}
        request = server.trigger_on_prompt(request)
        prompt = compat.with_node_replacements(server, request.get("prompt", prompt))
        prompt = with_result_previews(prompt, prompt_id)
        extra_data: dict[str, Any] = dict(request.get("extra_data") or {})
        extra_data["client_id"] = self._client_id
        outputs = await self._check(prompt, prompt_id)
        number = server.number
        server.number += 1
        self.watch(prompt_id)
        if self.six_field_items:
            keys = getattr(self._execution, "SENSITIVE_EXTRA_DATA_KEYS", ())
            sensitive = {k: extra_data.pop(k) for k in keys if k in extra_data}
            extra_data["create_time"] = int(time.time() * 1000)
            server.prompt_queue.put((number, prompt_id, prompt, extra_data, outputs, sensitive))
        else:
            server.prompt_queue.put((number, prompt_id, prompt, extra_data, outputs))
        return int(number)

    async def validate(self, prompt: dict[str, Any], prompt_id: str | None = None) -> list[str]:
        """Check ``prompt`` with ComfyUI's own validation; return its output node ids.

        Node types this ComfyUI replaces are checked as their replacements (``prompt`` is not changed).
        Must run on ComfyUI's event loop. Raises :class:`PromptRejected` naming node, input and reason.
        """
        return await self._check(compat.with_node_replacements(self.server, prompt), prompt_id)

    async def _check(self, prompt: dict[str, Any], prompt_id: str | None) -> list[str]:
        prompt_id = prompt_id or str(uuid.uuid4())
        if self._validate_arity >= 3:
            valid = await self._validate(prompt_id, prompt, None)
        else:
            valid = await self._validate(prompt_id, prompt)
        if not valid[0]:
            raise PromptRejected(valid[1] or {}, valid[3] or {})
        return [str(node) for node in valid[2]]

    def queue_view(self) -> QueueView:
        """Running and pending prompt ids (pending in the order ComfyUI will run them)."""
        queue = self.server.prompt_queue
        with queue.mutex:
            running = [str(item[1]) for item in queue.currently_running.values()]
            pending = [str(item[1]) for item in sorted(queue.queue, key=lambda item: item[0])]
        return QueueView(running, pending)

    def cancel(self, prompt_id: str) -> str:
        """Cancel one prompt: ``"removed"`` if it was pending, ``"interrupted"`` if it was running,
        ``"not_found"`` otherwise. Never touches any other prompt (``PromptQueue.interrupt_if_running``
        where this ComfyUI has it, else our own check under the queue's lock)."""

        def interrupt() -> None:
            import nodes

            nodes.interrupt_processing(True)

        return compat.cancel_prompt(self.server.prompt_queue, prompt_id, interrupt)

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """ComfyUI's history entry of a prompt (a deep copy), or None."""
        entry = self.server.prompt_queue.get_history(prompt_id=prompt_id).get(prompt_id)
        return dict(entry) if entry else None

    def has_run(self, prompt_id: str) -> bool:
        """Whether ComfyUI ran the prompt (it has a history entry): a prompt that left the queue without
        one was removed."""
        queue = self.server.prompt_queue
        with queue.mutex:
            return prompt_id in queue.history
