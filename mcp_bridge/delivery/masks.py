"""Inpainting masks: one grey-scale PNG the size of the image it masks, white where to repaint.

Made from the caller's mask image (its luminance, resized to the image when the sizes differ) or,
without one, from the image's own alpha channel (transparent = repaint). A mask with nothing to
repaint is refused before anything is queued. Synchronous: run it off the event loop.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

from PIL import Image, ImageOps

from .inputs import STAGING_SUBFOLDER, InputRejected, StagedImage
from .paths import safe_write


def make_mask(
    image: StagedImage, mask: StagedImage | None, input_dir: Path, label: str = "mask"
) -> StagedImage:
    """Stage the repaint mask of ``image`` (from ``mask``, else from its alpha); raise InputRejected."""
    with Image.open(image.path) as source:
        if mask is None:
            if "A" not in source.getbands() and "transparency" not in source.info:
                raise InputRejected(
                    f"give a {label} (white = repaint), or an image with transparent pixels to repaint"
                )
            grey = ImageOps.invert(source.convert("RGBA").getchannel("A"))
        else:
            with Image.open(mask.path) as given:
                grey = given.convert("L")
            if grey.size != source.size:
                grey = grey.resize(source.size, Image.Resampling.BILINEAR)
    if grey.getextrema()[1] == 0:
        what = f"the {label} is all black" if mask is not None else "the image has no transparent pixels"
        raise InputRejected(
            f"{what}: nothing to repaint (white, or transparent in the image, marks what to repaint)"
        )
    buf = io.BytesIO()
    grey.save(buf, "PNG")
    name = f"{uuid.uuid4().hex}.png"
    folder = input_dir / STAGING_SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    target = safe_write(folder / name, buf.getvalue(), overwrite=False)
    return StagedImage(
        f"{STAGING_SUBFOLDER}/{name}", target, grey.width, grey.height, mask.source if mask else "alpha"
    )
