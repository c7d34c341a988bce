"""The spec format's graph kinds and checks: controlnets, a mask's source, the "any" check."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mcp_bridge.specs.graph import default_folder
from mcp_bridge.specs.spec import SpecError, parse_spec


def shipped(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((default_folder() / f"{name}.json").read_text())
    return data


def with_input(name: str, argument: str, raw: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(shipped(name))
    data["_bridge"]["inputs"][argument] = raw
    return data


def test_the_shipped_specs_declare_their_controlnet_target_and_mask_source() -> None:
    for name in ("txt2img", "img2img", "inpaint"):
        (item,) = parse_spec(name, shipped(name)).of_kind("controlnets")
        assert item.conditioning == "3" and item.slot is None
    mask = parse_spec("inpaint", shipped("inpaint")).input("mask")
    assert mask is not None and mask.source == "input_image"


@pytest.mark.parametrize(
    ("name", "argument", "raw", "expected"),
    [
        pytest.param(
            "txt2img", "controlnets", {"kind": "controlnets"}, "'conditioning' must name", id="no-target"
        ),
        pytest.param(
            "txt2img",
            "controlnets",
            {"kind": "controlnets", "conditioning": "8"},
            "no positive",
            id="not-a-sampler",
        ),
        pytest.param(
            "txt2img", "more", {"kind": "controlnets", "conditioning": "3"}, "at most one", id="two-stacks"
        ),
        pytest.param(
            "inpaint", "mask", {"kind": "mask", "source": "photo"}, "names no input", id="bad-source"
        ),
        pytest.param(
            "txt2img", "seed", {"kind": "seed", "source": "prompt"}, "only a mask", id="source-on-seed"
        ),
    ],
)
def test_broken_graph_inputs_are_spec_errors(
    name: str, argument: str, raw: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SpecError, match=expected):
        parse_spec(name, with_input(name, argument, raw))


def test_an_any_check_needs_a_non_empty_list() -> None:
    data = copy.deepcopy(shipped("outpaint"))
    data["_bridge"]["checks"] = [{"any": []}]
    with pytest.raises(SpecError, match="'any'"):
        parse_spec("outpaint", data)
