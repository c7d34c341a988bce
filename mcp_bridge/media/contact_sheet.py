"""A result's inline budget: above it, one labelled contact sheet stands for all its previews.

Clients cap a message near 1 MiB; many previews (a batch, a large batch_size) pass that. The sheet is
a grid of small thumbnails, each labelled with its number in the result's order (1, 2, ...), encoded
like any preview. The result keeps every file's link. Blocking (decoding, encoding): run off the loop.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
from collections.abc import Sequence
from typing import Any, Protocol, TypeGuard, cast

from PIL import Image, ImageDraw

from . import images

CELL = 128  # thumbnail side in the sheet, pixels
MAX_SHEET_SIDE = 1024  # the sheet's longest side; cells shrink to fit many items
_LABEL_BAND = 14


class Preview(Protocol):
    """An inline image block of a result (``type`` "image", base64 ``data``): the MCP SDK's
    ``ImageContent`` or the delivery layer's own; a sheet is made of the same class."""

    type: str
    data: str
    mime_type: str


def is_preview(block: object) -> TypeGuard[Preview]:
    return getattr(block, "type", None) == "image" and isinstance(getattr(block, "data", None), str)


def inline_bytes(blocks: Sequence[object]) -> int:
    """Bytes of inline (base64) image data among ``blocks``."""
    return sum(len(b.data) for b in blocks if is_preview(b))


def contact_sheet(previews: Sequence[Preview], labels: Sequence[str]) -> Preview:
    """One image of every preview, in order, each under its label."""
    columns = max(1, math.ceil(math.sqrt(len(previews))))
    rows = max(1, math.ceil(len(previews) / columns))
    cell = max(32, min(CELL, MAX_SHEET_SIDE // columns))
    sheet = Image.new("RGB", (columns * cell, rows * (cell + _LABEL_BAND)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for position, (block, label) in enumerate(zip(previews, labels, strict=True)):
        left, top = (position % columns) * cell, (position // columns) * (cell + _LABEL_BAND)
        with Image.open(io.BytesIO(base64.b64decode(block.data))) as im:
            thumb = im.convert("RGB")
        thumb.thumbnail((cell - 4, cell - 4))
        sheet.paste(thumb, (left + (cell - thumb.width) // 2, top + _LABEL_BAND + (cell - thumb.height) // 2))
        draw.text((left + 3, top + 1), label, fill=(240, 240, 240))
    data, mime = images.make_preview(sheet, max_side=MAX_SHEET_SIDE)
    made: Preview = cast(Any, type(previews[0]))(
        type="image", data=base64.b64encode(data).decode(), mime_type=mime
    )
    return made


def within_budget(
    blocks: list[object], budget: int, labels: Sequence[str] | None = None
) -> tuple[list[object], bool]:
    """``blocks`` as they are when their inline data fits ``budget``; else with every preview replaced
    by one contact sheet where the first preview was (labels default to 1, 2, ...). Also says whether
    the sheet was made."""
    if inline_bytes(blocks) <= budget:
        return blocks, False
    previews = [b for b in blocks if is_preview(b)]
    names = list(labels) if labels is not None else [str(i) for i in range(1, len(previews) + 1)]
    sheet = contact_sheet(previews, names)
    first = next(i for i, b in enumerate(blocks) if is_preview(b))
    rest = [b for b in blocks if not is_preview(b)]
    return [*rest[:first], sheet, *rest[first:]], True


async def fit_budget(
    blocks: list[Any], budget: int, labels: Sequence[str] | None = None
) -> tuple[list[Any], bool]:
    """:func:`within_budget` from the event loop: at once when the blocks fit (the usual case: no
    worker thread to wake), in a worker thread when a sheet must be made."""
    if inline_bytes(blocks) <= budget:
        return blocks, False
    return await asyncio.to_thread(within_budget, blocks, budget, labels)
