"""The UI-format converter on small hand-made graphs, one construct each (issue 23)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.specs.ui_graph import ConversionError, convert, widget_values

DEFS: dict[str, dict[str, NodeInput]] = {
    "CheckpointLoaderSimple": {"ckpt_name": NodeInput("COMBO", options=("a.safetensors",))},
    "CLIPTextEncode": {"text": NodeInput("STRING"), "clip": NodeInput("CLIP")},
    "KSampler": {
        "model": NodeInput("MODEL"),
        "seed": NodeInput("INT", control_after_generate=True),
        "steps": NodeInput("INT"),
        "cfg": NodeInput("FLOAT"),
        "positive": NodeInput("CONDITIONING"),
        "latent_image": NodeInput("LATENT"),
    },
    "EmptyLatentImage": {"width": NodeInput("INT"), "height": NodeInput("INT")},
    "LoadImage": {"image": NodeInput("COMBO", upload=True)},
    "SaveImage": {"images": NodeInput("IMAGE"), "filename_prefix": NodeInput("STRING")},
    "ImageInvert": {"image": NodeInput("IMAGE")},
    "PrimitiveInt": {"value": NodeInput("INT", control_after_generate=True)},
    "Counter": {"n": NodeInput("INT", force_input=True), "label": NodeInput("STRING")},
}


def defs(name: str) -> dict[str, NodeInput] | None:
    return DEFS.get(name)


def node(
    node_id: int, kind: str, values: Any = None, inputs: Any = (), outputs: Any = (), **more: Any
) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": kind,
        "widgets_values": values if values is not None else [],
        "inputs": [dict(i) for i in inputs],
        "outputs": [dict(o) for o in outputs],
        **more,
    }


def socket(name: str, kind: str, link: int | None, widget: bool = False) -> dict[str, Any]:
    return {"name": name, "type": kind, "link": link, **({"widget": {"name": name}} if widget else {})}


def graph(nodes: list[dict[str, Any]], links: list[list[Any]], **more: Any) -> dict[str, Any]:
    return {"nodes": nodes, "links": links, **more}


def test_widgets_map_to_input_names_skipping_the_seed_control_value() -> None:
    wf = graph([node(3, "KSampler", [42, "randomize", 20, 7.5])], [])
    assert convert(wf, defs).prompt["3"]["inputs"] == {"seed": 42, "steps": 20, "cfg": 7.5}


def test_upload_button_value_is_skipped_and_a_socket_only_input_takes_no_value() -> None:
    assert widget_values({"widgets_values": ["cat.png", "image"]}, DEFS["LoadImage"]) == {"image": "cat.png"}
    assert widget_values({"widgets_values": ["hello"]}, DEFS["Counter"]) == {"label": "hello"}


def test_links_become_node_and_slot_pairs_with_titles() -> None:
    wf = graph(
        [
            node(1, "CheckpointLoaderSimple", ["a.safetensors"], title="Loader"),
            node(2, "CLIPTextEncode", ["a cat"], [socket("clip", "CLIP", 10)]),
        ],
        [[10, 1, 1, 2, 0, "CLIP"]],
    )
    prompt = convert(wf, defs).prompt
    assert prompt["2"] == {
        "inputs": {"text": "a cat", "clip": ["1", 1]},
        "class_type": "CLIPTextEncode",
        "_meta": {"title": "CLIPTextEncode"},
    }
    assert prompt["1"]["_meta"] == {"title": "Loader"}


def test_reroute_is_followed_to_its_source() -> None:
    wf = graph(
        [
            node(1, "CheckpointLoaderSimple", ["a.safetensors"]),
            node(5, "Reroute", [], [socket("", "*", 11)], [{"name": "", "type": "CLIP", "links": [12]}]),
            node(2, "CLIPTextEncode", ["x"], [socket("clip", "CLIP", 12)]),
        ],
        [[11, 1, 1, 5, 0, "*"], [12, 5, 0, 2, 0, "CLIP"]],
    )
    prompt = convert(wf, defs).prompt
    assert prompt["2"]["inputs"]["clip"] == ["1", 1]
    assert "5" not in prompt


def test_primitive_node_value_goes_into_the_widget_it_feeds_links_into_widgets() -> None:
    wf = graph(
        [
            node(7, "PrimitiveNode", [1234, "fixed"], [], [{"name": "INT", "type": "INT", "links": [20]}]),
            node(3, "KSampler", [1, "fixed", 20, 7.0], [socket("seed", "INT", 20, widget=True)]),
        ],
        [[20, 7, 0, 3, 0, "INT"]],
    )
    prompt = convert(wf, defs).prompt
    assert prompt["3"]["inputs"]["seed"] == 1234
    assert set(prompt) == {"3"}


def test_converted_widget_linked_to_a_real_node_becomes_a_link() -> None:
    wf = graph(
        [
            node(8, "PrimitiveInt", [99, "fixed"], [], [{"name": "INT", "type": "INT", "links": [21]}]),
            node(3, "KSampler", [1, "fixed", 20, 7.0], [socket("steps", "INT", 21, widget=True)]),
        ],
        [[21, 8, 0, 3, 0, "INT"]],
    )
    prompt = convert(wf, defs).prompt
    assert prompt["3"]["inputs"]["steps"] == ["8", 0]
    assert prompt["8"]["inputs"] == {"value": 99}


def test_bypassed_node_passes_its_input_of_the_same_type_through() -> None:
    wf = graph(
        [
            node(1, "LoadImage", ["cat.png", "image"], [], [{"name": "IMAGE", "type": "IMAGE"}]),
            node(
                2,
                "ImageInvert",
                [],
                [socket("image", "IMAGE", 30)],
                [{"name": "IMAGE", "type": "IMAGE"}],
                mode=4,
            ),
            node(9, "SaveImage", ["out"], [socket("images", "IMAGE", 31)]),
        ],
        [[30, 1, 0, 2, 0, "IMAGE"], [31, 2, 0, 9, 0, "IMAGE"]],
    )
    prompt = convert(wf, defs).prompt
    assert prompt["9"]["inputs"]["images"] == ["1", 0]
    assert "2" not in prompt


def test_muted_and_note_nodes_are_dropped_and_links_from_them_omitted() -> None:
    wf = graph(
        [
            node(1, "LoadImage", ["cat.png", "image"], mode=2),
            node(4, "Note", ["read me"]),
            node(5, "MarkdownNote", ["# hi"]),
            node(9, "SaveImage", ["out"], [socket("images", "IMAGE", 31)]),
        ],
        [[31, 1, 0, 9, 0, "IMAGE"]],
    )
    prompt = convert(wf, defs).prompt
    assert prompt == {
        "9": {
            "inputs": {"filename_prefix": "out"},
            "class_type": "SaveImage",
            "_meta": {"title": "SaveImage"},
        }
    }


def _subgraph(
    sub_id: str,
    nodes: list[dict[str, Any]],
    links: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    **more: Any,
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "name": sub_id,
        "inputNode": {"id": -10},
        "outputNode": {"id": -20},
        "inputs": inputs,
        "outputs": outputs,
        "nodes": nodes,
        "links": links,
        **more,
    }


def _link(link_id: int, origin: int, oslot: int, target: int, tslot: int) -> dict[str, Any]:
    return {
        "id": link_id,
        "origin_id": origin,
        "origin_slot": oslot,
        "target_id": target,
        "target_slot": tslot,
        "type": "*",
    }


INVERT = _subgraph(
    "sub-invert",
    [node(2, "ImageInvert", [], [socket("image", "IMAGE", 1)], [{"name": "IMAGE", "type": "IMAGE"}])],
    [_link(1, -10, 0, 2, 0), _link(2, 2, 0, -20, 0)],
    [{"name": "image", "type": "IMAGE", "linkIds": [1]}],
    [{"name": "IMAGE", "type": "IMAGE", "linkIds": [2]}],
)


def test_subgraph_is_flattened_with_its_inputs_and_outputs() -> None:
    wf = graph(
        [
            node(1, "LoadImage", ["cat.png", "image"]),
            node(50, "sub-invert", [], [socket("image", "IMAGE", 40)], [{"name": "IMAGE", "type": "IMAGE"}]),
            node(9, "SaveImage", ["out"], [socket("images", "IMAGE", 41)]),
        ],
        [[40, 1, 0, 50, 0, "IMAGE"], [41, 50, 0, 9, 0, "IMAGE"]],
        definitions={"subgraphs": [INVERT]},
    )
    prompt = convert(wf, defs).prompt
    assert set(prompt) == {"1", "50:2", "9"}
    assert prompt["50:2"]["inputs"] == {"image": ["1", 0]}
    assert prompt["9"]["inputs"]["images"] == ["50:2", 0]


def test_nested_subgraphs_get_nested_ids() -> None:
    outer = _subgraph(
        "sub-outer",
        [node(7, "sub-invert", [], [socket("image", "IMAGE", 3)], [{"name": "IMAGE", "type": "IMAGE"}])],
        [_link(3, -10, 0, 7, 0), _link(4, 7, 0, -20, 0)],
        [{"name": "image", "type": "IMAGE", "linkIds": [3]}],
        [{"name": "IMAGE", "type": "IMAGE", "linkIds": [4]}],
    )
    wf = graph(
        [
            node(1, "LoadImage", ["cat.png", "image"]),
            node(60, "sub-outer", [], [socket("image", "IMAGE", 40)]),
            node(9, "SaveImage", ["out"], [socket("images", "IMAGE", 41)]),
        ],
        [[40, 1, 0, 60, 0, "IMAGE"], [41, 60, 0, 9, 0, "IMAGE"]],
        definitions={"subgraphs": [outer, INVERT]},
    )
    prompt = convert(wf, defs).prompt
    assert prompt["60:7:2"]["inputs"] == {"image": ["1", 0]}
    assert prompt["9"]["inputs"]["images"] == ["60:7:2", 0]


def _seeded_subgraph() -> dict[str, Any]:
    return _subgraph(
        "sub-seed",
        [node(3, "KSampler", [1, "fixed", 20, 7.0], [socket("seed", "INT", 5, widget=True)])],
        [_link(5, -10, 0, 3, 0)],
        [{"name": "seed", "type": "INT", "linkIds": [5]}],
        [],
    )


def test_subgraph_widget_promoted_on_the_instance_gives_its_value() -> None:
    wf = graph([node(70, "sub-seed", [777])], [], definitions={"subgraphs": [_seeded_subgraph()]})
    assert convert(wf, defs).prompt["70:3"]["inputs"]["seed"] == 777


def test_proxy_widgets_name_the_subgraph_inputs_they_show() -> None:
    wf = graph(
        [node(70, "sub-seed", [555], properties={"proxyWidgets": [["-1", "seed"]]})],
        [],
        definitions={"subgraphs": [_seeded_subgraph()]},
    )
    assert convert(wf, defs).prompt["70:3"]["inputs"]["seed"] == 555


def test_muted_subgraph_instance_and_missing_node_types() -> None:
    wf = graph(
        [node(70, "sub-seed", [777], mode=2), node(4, "SomePackNode", [1])],
        [],
        definitions={"subgraphs": [_seeded_subgraph()]},
    )
    result = convert(wf, defs)
    assert result.prompt == {}
    assert result.missing == ("SomePackNode",)


def test_a_subgraph_containing_itself_is_an_error() -> None:
    loop = _subgraph("sub-loop", [node(1, "sub-loop", [])], [], [], [])
    wf = graph([node(1, "sub-loop", [])], [], definitions={"subgraphs": [loop]})
    with pytest.raises(ConversionError, match="nested deeper"):
        convert(wf, defs)


def test_not_a_ui_graph() -> None:
    with pytest.raises(ConversionError, match="UI-format"):
        convert({"3": {"class_type": "KSampler", "inputs": {}}}, defs)


def test_an_older_frontends_boolean_control_value_is_skipped_too() -> None:
    values = widget_values({"widgets_values": [7, True, 20, 8.0]}, DEFS["KSampler"])
    assert values == {"seed": 7, "steps": 20, "cfg": 8.0}


def test_widgets_the_saved_values_leave_out_get_their_defaults_as_in_the_frontend() -> None:
    declared = {
        "filename_prefix": NodeInput("STRING", default="ComfyUI"),
        "method": NodeInput("COMBO", options=("default", "fastest")),
        "images": NodeInput("IMAGE"),
    }
    assert widget_values({"widgets_values": None}, declared) == {
        "filename_prefix": "ComfyUI",
        "method": "default",
    }
    assert widget_values({"widgets_values": ["out"]}, declared) == {
        "filename_prefix": "out",
        "method": "default",
    }


def test_a_control_declared_off_takes_no_value() -> None:
    declared = {"seed": NodeInput("INT", control_after_generate=False), "steps": NodeInput("INT")}
    assert widget_values({"widgets_values": [1, 2]}, declared) == {"seed": 1, "steps": 2}
