"""The inline budget of a result: previews as they are below it, one labelled sheet above it."""

from __future__ import annotations

import base64
import io
import os

from mcp.types import ImageContent, ResourceLink, TextContent
from PIL import Image

from mcp_bridge.media import images
from mcp_bridge.media.contact_sheet import inline_bytes, within_budget


def noisy_preview(side: int = 512) -> ImageContent:
    noise = Image.frombytes(
        "RGB", (side, side), os.urandom(side * side * 3)
    )  # incompressible, like the tiny model's
    data, mime = images.make_preview(noise, max_side=side)
    return ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime)


def link(n: int) -> ResourceLink:
    return ResourceLink(type="resource_link", uri=f"comfy://output/mcp/{n}.png", name=f"{n}.png")


def test_previews_under_the_budget_stay_and_over_it_become_one_labelled_sheet() -> None:
    blocks: list[object] = [TextContent(type="text", text="summary")]
    for n in range(1, 17):
        blocks += [noisy_preview(), link(n)]
    assert inline_bytes(blocks) > 1024 * 1024  # sixteen 512 px previews of noise: over 1 MiB of base64
    same, sheet = within_budget(blocks, 64 * 1024 * 1024)
    assert same is blocks and not sheet
    fitted, sheet = within_budget(blocks, 1024 * 1024)
    assert sheet and inline_bytes(fitted) <= 1024 * 1024
    assert isinstance(fitted[0], TextContent) and isinstance(fitted[1], ImageContent)
    assert [b.name for b in fitted if isinstance(b, ResourceLink)] == [f"{n}.png" for n in range(1, 17)]
    (only,) = [b for b in fitted if isinstance(b, ImageContent)]
    with Image.open(io.BytesIO(base64.b64decode(only.data))) as im:
        assert im.size == (512, 4 * (128 + 14))  # a 4 x 4 grid of 128 px cells under their labels
