"""What a call will make from its input images, checked as each image is read (before it is staged).

A spec's ``pixels``, ``canvas``, ``output`` and ``video`` checks with a ``source`` (:class:`.spec.Check`)
depend on the size of an image the caller gives: img2img keeps the source's size when width/height are
omitted, inpaint makes the source's size, upscale_image the source's times the model's scale, outpaint
the grown canvas, images_to_video as many frames as images of the first one's size. :func:`source_checks`
turns them into one function per image input that the staging calls with the image's width and height;
it raises :class:`~.params.ParamRejected` with the numbers. Pure Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .params import Limits, ParamRejected
from .spec import Check, ToolSpec

SizeCheck = Callable[[int, int], None]


def source_checks(
    spec: ToolSpec, values: Mapping[str, Any], limits: Limits, scales: Mapping[str, int]
) -> dict[str, SizeCheck]:
    """Per image input (or ``images`` input: its first frame), the checks of ``spec`` over its size.
    ``values`` are the call's arguments by input name; ``scales`` the scale of each upscale model input."""
    found: dict[str, list[SizeCheck]] = {}
    for check in spec.checks:
        if check.source is None or values.get(check.source) is None:
            continue
        one = _check(spec, check, values, limits, scales)
        if one is not None:
            found.setdefault(check.source, []).append(one)
    return {name: _all(checks) for name, checks in found.items()}


def _all(checks: list[SizeCheck]) -> SizeCheck:
    def run(width: int, height: int) -> None:
        for check in checks:
            check(width, height)

    return run


def _check(
    spec: ToolSpec, check: Check, values: Mapping[str, Any], limits: Limits, scales: Mapping[str, int]
) -> SizeCheck | None:
    source = check.source or ""
    given = [values.get(name) for name in check.inputs]
    where = f"{spec.name}'s result from {source}"
    if check.rule == "pixels":
        if all(v is not None for v in given[:2]):
            return None  # the size is the caller's: checked with the arguments
        width, height, *batch = given
        count = int(batch[0] or 1) if batch else 1
        return lambda w, h: limits.check_size(
            width or w, height or h, count, what=f"{where} ({w}x{h}, kept when width/height are omitted)"
        )
    if check.rule == "output":
        scale = scales.get(check.scale, 1) if check.scale else 1
        times = f" x{scale} (the upscale model's scale)" if check.scale else ""
        return lambda w, h: limits.check_size(w * scale, h * scale, what=f"{where} ({w}x{h}){times}")
    if check.rule == "canvas":
        added = [int(v or 0) for v in given]
        return lambda w, h: _canvas(check, w, h, added, limits)
    if check.rule == "video":
        frames = len(values.get(source) or ())
        return lambda w, h: limits.check_video(w, h, frames, what=f"{spec.name}'s video from {source}")
    return None


def _canvas(check: Check, width: int, height: int, added: list[int], limits: Limits) -> None:
    """The source image grown by ``added`` (left, right, top, bottom) within the side and pixel caps."""
    grown_w, grown_h = width + added[0] + added[1], height + added[2] + added[3]
    if max(grown_w, grown_h) > limits.max_side:
        names = ", ".join(check.inputs)
        raise ParamRejected(
            f"{check.source} ({width}x{height}) grown by {names} would be {grown_w}x{grown_h}, "
            f"over the largest side of {limits.max_side}; add fewer pixels"
        )
    limits.check_pixels(grown_w, grown_h)
