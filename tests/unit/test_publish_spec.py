"""Publishing: a panel selection over an API prompt becomes a spec with kinds from the node definitions."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.specs.publishing import PublishRefused, Selection, build_spec, parse_selection
from mcp_bridge.specs.spec import parse_spec
from mcp_bridge.specs.writes import WritesRefused, check_writes

NODES: dict[str, dict[str, NodeInput]] = {
    "CheckpointLoaderSimple": {"ckpt_name": NodeInput("COMBO", options=("a.safetensors", "b.safetensors"))},
    "TinySampler": {
        "seed": NodeInput("INT", minimum=0, maximum=2**64 - 1),
        "steps": NodeInput("INT", minimum=1, maximum=10000),
        "sampler_name": NodeInput("COMBO", options=("euler",)),
        "model": NodeInput("MODEL"),
    },
    "LoadImage": {"image": NodeInput("COMBO", options=("x.png",))},
    "SaveImage": {"images": NodeInput("IMAGE"), "filename_prefix": NodeInput("STRING")},
    "SaveToPath": {"images": NodeInput("IMAGE"), "path": NodeInput("STRING")},
    "SaveImageDataSetToFolder": {"images": NodeInput("IMAGE"), "folder_name": NodeInput("STRING"),
                                 "filename_prefix": NodeInput("STRING")},
    "WriteAnywhere": {"images": NodeInput("IMAGE"), "where": NodeInput("STRING")},
    "PrimitiveString": {"value": NodeInput("STRING")},
    "CombineFrames": {"images": NodeInput("IMAGE"), "fps": NodeInput("FLOAT"),
                      "filename_prefix": NodeInput("STRING")},
    "Timer": {"timings": NodeInput("INT", minimum=0, maximum=100), "model": NodeInput("MODEL")},
}  # fmt: skip


def prompt(**extra: Any) -> dict[str, Any]:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
        "2": {"class_type": "TinySampler",
              "inputs": {"model": ["1", 0], "seed": 3, "steps": 4, "sampler_name": "euler"},
              "_meta": {"title": "Sampler"}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "p"}},
        **extra,
    }  # fmt: skip


def build(selection: Selection, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_spec(
        data or prompt(),
        selection,
        tool="mine",
        description="My workflow",
        outputs=["4"],
        node_classes=set(NODES),
        node_inputs=NODES.get,
        model_files=lambda folder: ["a.safetensors", "b.safetensors"] if folder == "checkpoints" else [],
    )


def test_kinds_come_from_node_definitions() -> None:
    selection = parse_selection(
        {"inputs": [["1", "ckpt_name"], ["2", "seed"], ["2", "steps"], ["2", "sampler_name"], ["3", "image"]]}
    )
    spec = build(selection)
    inputs = spec["_bridge"]["inputs"]
    assert {k: v["kind"] for k, v in inputs.items()} == {
        "ckpt_name": "model", "seed": "seed", "steps": "int", "sampler_name": "sampler", "image": "image",
    }  # fmt: skip
    assert (
        inputs["ckpt_name"]["folder"] == "checkpoints" and inputs["ckpt_name"]["default"] == "a.safetensors"
    )
    assert inputs["image"]["required"] is True and "Sampler: steps" in inputs["steps"]["description"]
    assert spec["_bridge"]["outputs"] == ["4"]
    assert parse_spec("x", spec).name == "mine"  # what is stored loads as a spec


@pytest.mark.parametrize(
    ("selection", "data", "words"),
    [
        ({"inputs": [["2", "model"]]}, None, "connected to another node"),
        ({"inputs": [["4", "filename_prefix"]]}, None, "names files"),
        ({"inputs": [["9", "seed"]]}, None, "not in the workflow"),
        ({"inputs": [["2", "cfg"]]}, None, "no widget 'cfg'"),
        ({"inputs": []}, None, "at least one widget"),
        ({"inputs": [["2", "seed"]], "outputs": ["2"]}, None, "not output nodes"),
        (
            {"inputs": [["2", "seed"]]},
            prompt(**{"5": {"class_type": "SaveToPath", "inputs": {"images": ["3", 0], "path": "/tmp/x"}}}),
            "writes where its input 'path' says",
        ),
        (
            {"inputs": [["2", "seed"]]},
            prompt(**{"5": {"class_type": "Missing", "inputs": {}}}),
            "not installed",
        ),
    ],
)
def test_refusals_name_the_problem(
    selection: dict[str, Any], data: dict[str, Any] | None, words: str
) -> None:
    with pytest.raises(PublishRefused, match=words):
        build(parse_selection(selection), data)


def test_duplicate_widgets_get_names_from_titles() -> None:
    data = prompt(**{"5": {"class_type": "TinySampler", "inputs": {"model": ["1", 0], "seed": 1, "steps": 2,
                                                                "sampler_name": "euler"},
                           "_meta": {"title": "Refiner"}}})  # fmt: skip
    spec = build(parse_selection({"inputs": [["2", "seed"], ["5", "seed"]]}), data)
    assert list(spec["_bridge"]["inputs"]) == ["seed", "refiner_seed"]


def two_saves() -> dict[str, Any]:
    save = {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "q"}}
    return prompt(**{"5": save})


def test_output_nodes_left_out_of_the_selection_are_not_run() -> None:
    """ComfyUI runs every output node of a prompt: one the user did not pick would save its files too."""
    selection = parse_selection({"inputs": [["2", "steps"]], "outputs": ["5"]})
    spec = build_spec(
        two_saves(),
        selection,
        tool="mine",
        description="My workflow",
        outputs=["4", "5"],
        node_classes=set(NODES),
        node_inputs=NODES.get,
        model_files=lambda folder: [],
    )
    assert "4" not in spec and spec["5"]["class_type"] == "SaveImage"
    assert spec["_bridge"]["outputs"] == ["5"]
    assert parse_spec("mine", spec).template.save_nodes == ("5",)
    refused = parse_selection({"inputs": [["4", "filename_prefix"]], "outputs": ["5"]})
    with pytest.raises(PublishRefused, match="node 4 is an output node left out"):
        build_spec(
            two_saves(), refused, tool="mine", description="d", outputs=["4", "5"],
            node_classes=set(NODES), node_inputs=NODES.get, model_files=lambda folder: [],
        )  # fmt: skip


def publish_outputs(data: dict[str, Any], outputs: list[str], picks: list[list[Any]]) -> dict[str, Any]:
    return build_spec(
        data, parse_selection({"inputs": picks, "outputs": outputs}), tool="mine", description="d",
        outputs=outputs, node_classes=set(NODES), node_inputs=NODES.get, model_files=lambda folder: [],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "picks", "words"),
    [
        (  # ComfyUI's dataset node joins output/<folder_name> with no containment
            {
                "5": {
                    "class_type": "SaveImageDataSetToFolder",
                    "inputs": {"images": ["3", 0], "folder_name": "../../x", "filename_prefix": "i"},
                }
            },
            [["2", "seed"]],
            "'folder_name'",
        ),
        (  # an output node's text input fed by a primitive the caller fills: refused whatever its name
            {
                "5": {"class_type": "WriteAnywhere", "inputs": {"images": ["3", 0], "where": ["6", 0]}},
                "6": {"class_type": "PrimitiveString", "inputs": {"value": "/tmp/out"}},
            },
            [["6", "value"]],
            "output node with the text input 'where'",
        ),
    ],
)
def test_output_nodes_that_write_where_a_text_says_are_refused(
    extra: dict[str, Any], picks: list[list[Any]], words: str
) -> None:
    with pytest.raises(PublishRefused, match=words):
        publish_outputs(prompt(**extra), ["4", "5"], picks)


def test_an_output_node_whose_only_text_is_the_prefix_the_bridge_sets_is_published() -> None:
    inputs = {"images": ["3", 0], "fps": 8.0, "filename_prefix": "c"}
    combine = {"class_type": "CombineFrames", "inputs": inputs}
    spec = publish_outputs(prompt(**{"5": combine}), ["4", "5"], [["5", "fps"]])
    assert spec["_bridge"]["outputs"] == ["4", "5"]
    assert parse_spec("mine", spec).template.save_nodes == ("4", "5")
    with pytest.raises(WritesRefused, match="'filename_prefix'"):  # run without the bridge naming its files
        check_writes(
            {"5": combine}, named=(), is_output_node=lambda cls: cls == "CombineFrames", node_inputs=NODES.get
        )
