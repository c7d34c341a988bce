"""A ComfyUI in memory for fast tests of the tool layer: the ``ComfyBackend`` interface, a queue that
"runs" prompts on the event loop and writes real image files, and the events ComfyUI would send.

It proves nothing about the integration (tests/integration does that against a real ComfyUI); it lets
every tool's validation, error texts, result shape and delivery be checked in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from mcp_bridge.bridge import load_tool_specs, param_models
from mcp_bridge.comfyui.artifacts import Artifact, kind_for, mime_for
from mcp_bridge.comfyui.backend import (
    NodeInput,
    PromptEvent,
    PromptOutcome,
    PromptRejected,
    QueueView,
    ServerOptions,
)
from mcp_bridge.config import Settings
from mcp_bridge.delivery.previews import EarlyPreviews
from mcp_bridge.engine.jobs import JobRegistry
from mcp_bridge.engine.runner import JobRunner
from mcp_bridge.tools.services import Services

# Node inputs the shipped specs use, as ComfyUI 0.3.x declares them (bounds the compiler narrows with).
NODE_INPUTS: dict[str, dict[str, NodeInput]] = {
    "KSampler": {
        "seed": NodeInput("INT", minimum=0, maximum=2**64 - 1),
        "steps": NodeInput("INT", default=20, minimum=1, maximum=10000),
        "cfg": NodeInput("FLOAT", default=8.0, minimum=0.0, maximum=100.0, step=0.1),
        "denoise": NodeInput("FLOAT", default=1.0, minimum=0.0, maximum=1.0, step=0.01),
        "sampler_name": NodeInput("COMBO", options=("euler", "euler_ancestral")),
        "scheduler": NodeInput("COMBO", options=("normal", "karras")),
    },
    "EmptyLatentImage": {
        "width": NodeInput("INT", default=512, minimum=16, maximum=16384, step=8),
        "height": NodeInput("INT", default=512, minimum=16, maximum=16384, step=8),
        "batch_size": NodeInput("INT", default=1, minimum=1, maximum=4096),
    },
    "InpaintModelConditioning": {"noise_mask": NodeInput("BOOLEAN", default=True)},
    "ImageScale": {
        "upscale_method": NodeInput(
            "COMBO", options=("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
        ),
        "width": NodeInput("INT", default=512, minimum=0, maximum=16384, step=1),
        "height": NodeInput("INT", default=512, minimum=0, maximum=16384, step=1),
    },
}


@dataclass
class FakeComfy:
    """ComfyUI's queue and folders, in memory and in ``root``."""

    root: Path
    models: dict[str, list[str]] = field(
        default_factory=lambda: {
            "checkpoints": ["tiny.safetensors"],
            "loras": ["a.safetensors", "b.safetensors"],
            "upscale_models": ["x4.safetensors"],
            "controlnet": ["cn-depth.safetensors", "cn-edges.safetensors"],
        }
    )
    extra_nodes: dict[str, dict[str, NodeInput]] = field(default_factory=dict)  # more node classes
    output_nodes: set[str] = field(default_factory=set)  # extra classes ComfyUI would run as outputs
    inpainting: set[str] = field(default_factory=set)  # checkpoints that are inpainting models
    templates: dict[str, Path] = field(default_factory=dict)  # template files served at /templates/
    hold: bool = False  # keep queued prompts waiting until release()
    reject: str | None = None  # make enqueue refuse the next prompts with this message
    queued: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # every prompt ever queued
    pushed: list[tuple[str, Any]] = field(default_factory=list)  # what went to ComfyUI's pages
    on_event: Callable[[PromptEvent], None] = lambda event: None
    on_done: Callable[[PromptOutcome], None] = lambda outcome: None
    _pending: list[str] = field(default_factory=list)
    _prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _queued_more: asyncio.Event = field(default_factory=asyncio.Event)
    _ran: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for sub in ("input", "output"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- facts --
    def comfyui_version(self) -> str | None:
        return "0.0-fake"

    def device_name(self) -> str:
        return "cpu"

    def server_options(self) -> ServerOptions:
        return ServerOptions("127.0.0.1", 8188, False, None, str(self.root / "user"))

    def input_directory(self) -> str:
        return str(self.root / "input")

    def output_directory(self) -> str:
        return str(self.root / "output")

    def protected_directories(self) -> list[str]:
        return [str(self.root / "models"), str(self.root / "user")]

    def model_files(self, folder: str) -> list[str]:
        return sorted(self.models.get(folder, []))

    def is_inpainting_checkpoint(self, name: str) -> bool:
        return name in self.inpainting

    def upscale_scale(self, name: str) -> int | None:
        return 4 if name in self.models.get("upscale_models", []) else None

    def model_path(self, folder: str, name: str) -> Path | None:
        path = self.root / "models" / folder / name
        return path if name in self.models.get(folder, []) and path.is_file() else None

    def samplers(self) -> list[str]:
        return ["euler", "euler_ancestral", "dpmpp_2m"]

    def schedulers(self) -> list[str]:
        return ["normal", "karras"]

    def node_class_names(self) -> set[str]:
        return {
            "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode",
            "VAEEncode", "SaveImage", "LoadImage", "LoraLoader", "RepeatLatentBatch", "ImageScale",
            "UpscaleModelLoader", "ImageUpscaleWithModel", "EmptyImage", "ControlNetLoader",
            "ControlNetApplyAdvanced", "Canny", "LoadImageMask", "GrowMask", "SetLatentNoiseMask",
            "ImageCompositeMasked", "ImagePadForOutpaint", "InpaintModelConditioning", *self.extra_nodes,
        }  # fmt: skip

    def node_inputs(self, class_type: str) -> dict[str, NodeInput] | None:
        return NODE_INPUTS.get(class_type) or self.extra_nodes.get(class_type)

    def is_output_node(self, class_type: str) -> bool:
        return class_type in ("SaveImage", "PreviewImage", *self.output_nodes)

    # -- the queue --
    def template_files(self) -> dict[str, Path]:
        return dict(self.templates)

    async def enqueue(self, prompt: dict[str, Any], prompt_id: str) -> int:
        if self.reject:
            raise PromptRejected(self.reject)
        self.queued.append((prompt_id, prompt))
        self._queued_more.set()
        self._prompts[prompt_id] = prompt
        self._pending.append(prompt_id)
        asyncio.get_running_loop().create_task(self._run(prompt_id))
        return len(self.queued)

    async def validate(self, prompt: dict[str, Any], prompt_id: str | None = None) -> list[str]:
        if self.reject:
            raise PromptRejected(self.reject)
        unknown = sorted({n["class_type"] for n in prompt.values()} - self.node_class_names())
        if unknown:
            raise PromptRejected(f"unknown node types {', '.join(unknown)}")
        return [i for i, n in prompt.items() if self.is_output_node(n["class_type"])]

    def queue_view(self) -> QueueView:
        return QueueView([], list(self._pending))

    def queue_length(self) -> int:
        return len(self._pending)

    def cancel(self, prompt_id: str) -> str:
        if prompt_id in self._pending:
            self._pending.remove(prompt_id)
            return "removed"
        return "not_found"

    def unwatch(self, prompt_id: str) -> None:
        pass

    def push_to_pages(self, event: str, data: Any) -> None:
        self.pushed.append((event, data))

    def has_run(self, prompt_id: str) -> bool:
        return prompt_id in self._ran

    def file_path(self, artifact: Artifact) -> Path:
        return self.root / artifact.folder_type / artifact.subfolder / artifact.filename

    async def wait_queued(self, count: int = 1) -> None:
        """Until ``count`` prompts were queued in all (what a test waits on instead of sleeping)."""
        while len(self.queued) < count:
            self._queued_more.clear()
            await self._queued_more.wait()

    def release(self) -> None:
        """Let held prompts run."""
        self.hold = False
        self._released.set()

    async def _run(self, prompt_id: str) -> None:
        await asyncio.sleep(0)
        while self.hold:
            await self._released.wait()
        if prompt_id not in self._pending:
            return  # cancelled while queued
        self._pending.remove(prompt_id)
        self._ran.add(prompt_id)
        prompt = self._prompts[prompt_id]
        self.on_event(PromptEvent("started", prompt_id))
        for node_id in prompt:
            self.on_event(PromptEvent("executing", prompt_id, node=node_id))
        artifacts = await asyncio.to_thread(self._write_outputs, prompt)
        for node_id in dict.fromkeys(a.node_id for a in artifacts):  # as ComfyUI: files before the end
            mine = tuple(a for a in artifacts if a.node_id == node_id)
            self.on_event(PromptEvent("executed", prompt_id, node=node_id, artifacts=mine))
        self.on_done(PromptOutcome(prompt_id, succeeded=True, artifacts=tuple(artifacts)))

    def _write_outputs(self, prompt: dict[str, Any]) -> list[Artifact]:
        if not any(node["class_type"] == "SaveImage" for node in prompt.values()):
            return []  # videos are not faked: their jobs end without files
        width, height, count = self._size(prompt)
        found = []
        for node_id, node in prompt.items():
            if node["class_type"] != "SaveImage":
                continue
            prefix = str(node["inputs"]["filename_prefix"])
            subfolder, _, stem = prefix.rpartition("/")
            for index in range(count):
                name = f"{stem}_{index + 1:05}_.png"
                path = self.root / "output" / subfolder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (width, height), (40 * index % 255, 90, 160)).save(path)
                found.append(Artifact(node_id, kind_for(name), name, subfolder, "output", mime_for(name)))
        return found

    def _size(self, prompt: dict[str, Any]) -> tuple[int, int, int]:
        # What the workflow would produce: an empty latent's size, else the loaded image's (scaled, x4).
        by_class = {n["class_type"]: n["inputs"] for n in prompt.values()}
        for empty in ("EmptyLatentImage", "EmptySD3LatentImage", "EmptyFlux2LatentImage"):  # any family's
            if empty in by_class:
                latent = by_class[empty]
                return int(latent["width"]), int(latent["height"]), int(latent["batch_size"])
        with Image.open(self.root / "input" / by_class["LoadImage"]["image"]) as im:
            width, height = im.size
        if "ImageScale" in by_class:
            width, height = int(by_class["ImageScale"]["width"]), int(by_class["ImageScale"]["height"])
        if "ImageUpscaleWithModel" in by_class:
            width, height = width * 4, height * 4
        count = int(by_class.get("RepeatLatentBatch", {}).get("amount", 1))
        return width, height, count


@asynccontextmanager
async def fake_services(root: Path, settings: Settings | None = None, **fake: Any) -> AsyncIterator[Services]:
    """Services over a :class:`FakeComfy` (as ``services.comfy``), built as the bridge builds them."""
    settings = settings or Settings()
    comfy = FakeComfy(root, **fake)
    registry = JobRegistry(queue_view=comfy.queue_view)
    runner = JobRunner(comfy, registry)
    comfy.on_event, comfy.on_done = registry.on_event, runner.on_done
    specs = load_tool_specs(settings, comfy)
    previews = EarlyPreviews(comfy).attach(registry)
    models = param_models(settings, specs, comfy)
    yield Services(comfy, registry, runner, settings, specs, models, previews=previews)
