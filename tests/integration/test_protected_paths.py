"""One protected list for reads and writes, on a real ComfyUI whose whole tree is an allowed folder."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from testbed.mcp_client import connect
from testbed.server import ComfyServer
from testbed.tiny_models import CHECKPOINT_NAME

pytestmark = pytest.mark.anyio


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(buf, "PNG")
    return buf.getvalue()


async def test_img2img_never_reads_comfyuis_user_or_model_folders_even_inside_an_output_root(
    comfy: ComfyServer, comfy_factory: Callable[..., ComfyServer], tmp_path: Path
) -> None:
    base = tmp_path / "comfy"
    base.mkdir()
    server = comfy_factory(comfy.version, base_dir=base, env={"COMFYUI_MCP_OUTPUT_ROOTS": str(base)})
    secrets = [server.user_dir / "default" / "secret.png", base / "models" / "checkpoints" / "x.png"]
    allowed = base / "shared.png"
    for path in [*secrets, allowed]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png())
    call = {"prompt": "a fox", "steps": 1, "model": CHECKPOINT_NAME, "denoise": 0.5}
    async with connect("streamable-2026", server.url) as client:
        for secret in secrets:
            result = await client.call_tool("img2img", {**call, "input_image": str(secret)})
            message = " ".join(getattr(block, "text", "") for block in result.content)
            assert result.is_error and "protected" in message, message
        staging = server.input_dir / "mcp"
        assert not staging.is_dir() or not list(staging.iterdir())  # nothing was copied
        done = await client.call_tool("img2img", {**call, "input_image": str(allowed)})
        assert not done.is_error  # the output root itself is readable
