"""What the common arguments mean, written once for every spec (issue 25: tools/list is read in every
conversation, so each tool carries short words and the schema's own bounds say the rest).

A spec input without a ``description`` gets the one here for its name, else for its kind; a spec's own
description always wins. ``{max_pixels}`` and the like are filled in with the configured limits.
"""

from __future__ import annotations

IMAGE_FORMS = (
    "a file in ComfyUI's input or output folder, a comfy://output/... link, a path in an allowed folder, "
    "or base64/data URI (png, jpeg, webp; at most {max_input_image_mib} MiB)"
)

BY_NAME: dict[str, str] = {
    "prompt": "What the image should show.",
    "negative_prompt": "What it should not show.",
    "width": "Pixels; width x height x batch_size at most {max_pixels}.",
    "height": "Pixels; width x height x batch_size at most {max_pixels}.",
    "steps": "Sampling steps.",
    "cfg_scale": "Prompt adherence (CFG).",
    "batch_size": "Images made at once.",
    "denoise": "How much to change: 0 keeps the source, 1 ignores it.",
    "input_image": "The image: " + IMAGE_FORMS + ".",
    "upscale_model": "From list_upscale_models; omit for the only one.",
}

BY_KIND: dict[str, str] = {
    "sampler": "From list_samplers.",
    "scheduler": "From list_schedulers.",
    "seed": "Omit for a random one; the seed used is reported.",
    "loras": "Applied in order, each once; names from list_loras.",
    "controlnets": "Applied in order; models and preprocessors from list_controlnets, image as input_image.",
    "image": "An image: " + IMAGE_FORMS + ".",
}


def shared(name: str, kind: str, folder: str | None = None) -> str:
    """The common words for an argument called ``name`` of ``kind`` ("" when there are none)."""
    if name in BY_NAME:
        return BY_NAME[name]
    if kind == "model":
        if folder == "checkpoints":
            return "Checkpoint from list_models; omit for the default."
        return f"A file of models/{folder}; omit for the only one."
    return BY_KIND.get(kind, "")
