"""A UI-format workflow (what ComfyUI's editor saves; every shipped template) as an API prompt.

Does what the frontend's ``app.graphToPrompt()`` does before the Run button queues a graph:
subgraphs are flattened (nested ones too; inner node ids become ``<instance>:<inner>`` as in the
frontend's export), links through reroutes, subgraph inputs and outputs are followed to the node that
computes the value, a primitive node's value goes into the widget it feeds, a bypassed node (mode 4)
passes its input of the same type through, muted nodes (mode 2) and notes are left out, and widget
values (``widgets_values``, a list in widget order) are mapped to input names through THIS ComfyUI's
node definitions, skipping the values the frontend adds (a seed's "control after generate", an
upload button). Pure Python: the node definitions are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..comfyui.backend import NodeInput

NodeInputs = Callable[[str], Mapping[str, NodeInput] | None]

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = frozenset({"seed", "noise_seed"})  # the frontend gives these a control even undeclared
VIRTUAL = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})  # frontend-only nodes
MUTED, BYPASSED = 2, 4
SUBGRAPH_INPUT, SUBGRAPH_OUTPUT = -10, -20
MAX_DEPTH = 16  # subgraphs inside subgraphs
MAX_HOPS = 1000  # links followed for one input (reroutes, bypasses, subgraph borders)


class ConversionError(ValueError):
    """The workflow is no UI-format graph this converter can read; the message says where."""


@dataclass(frozen=True)
class Converted:
    """The API prompt, and the node types the workflow uses that this ComfyUI lacks (left out)."""

    prompt: dict[str, dict[str, Any]]
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Link:
    node: str  # API node id
    slot: int


@dataclass(frozen=True)
class _Value:
    value: Any


_Source = _Link | _Value | None


@dataclass
class _Scope:
    """The root graph or one instance of a subgraph, with the ids its nodes get in the prompt."""

    nodes: dict[str, dict[str, Any]]
    links: dict[str, tuple[str, int, str, int]]  # id -> origin, origin slot, target, target slot
    prefix: str
    depth: int = 0
    parent: _Scope | None = None
    instance: dict[str, Any] | None = None  # the subgraph node, in the parent scope
    definition: dict[str, Any] = field(default_factory=dict)
    promoted: dict[int, Any] = field(default_factory=dict)  # subgraph input slot -> instance widget value


def convert(workflow: Mapping[str, Any], node_inputs: NodeInputs) -> Converted:
    """The API prompt of ``workflow``; raises :class:`ConversionError` for a graph it cannot read."""
    if not isinstance(workflow, Mapping) or not isinstance(workflow.get("nodes"), list):
        raise ConversionError("not a UI-format workflow (no 'nodes' list)")
    return _Converter(workflow, node_inputs).run()


def subgraph_definitions(workflow: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every subgraph definition of ``workflow`` by id (nested definitions included)."""
    found: dict[str, dict[str, Any]] = {}
    pending = [workflow]
    while pending and len(found) < 1000:
        holder = pending.pop()
        definitions = holder.get("definitions")
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
        for item in subgraphs if isinstance(subgraphs, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"] not in found:
                found[item["id"]] = item
                pending.append(item)
    return found


def all_nodes(workflow: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of the root graph and of every subgraph definition."""
    for holder in (workflow, *subgraph_definitions(workflow).values()):
        yield from (n for n in holder.get("nodes") or [] if isinstance(n, dict))


class _Converter:
    def __init__(self, workflow: Mapping[str, Any], node_inputs: NodeInputs) -> None:
        self.node_inputs = node_inputs
        self.subgraphs = subgraph_definitions(workflow)
        self.prompt: dict[str, dict[str, Any]] = {}
        self.missing: set[str] = set()
        self.root = _Scope(_nodes(workflow), _links(workflow.get("links")), "")

    def run(self) -> Converted:
        self._emit(self.root)
        return Converted(self.prompt, tuple(sorted(self.missing)))

    # -- nodes --

    def _emit(self, scope: _Scope) -> None:
        for node_id, node in scope.nodes.items():
            kind = str(node.get("type", ""))
            if node.get("mode", 0) in (MUTED, BYPASSED):
                continue
            if kind in self.subgraphs:
                self._emit(self._child(scope, node))
                continue
            if kind in VIRTUAL:
                continue
            declared = self.node_inputs(kind)
            if declared is None:
                self.missing.add(kind)
                continue
            inputs = widget_values(node, declared)
            for entry in node.get("inputs") or []:
                if not isinstance(entry, dict) or entry.get("link") is None:
                    continue
                link = scope.links.get(str(entry["link"]))
                source = self._source(scope, link[0], link[1]) if link else None
                if isinstance(source, _Link):
                    inputs[str(entry.get("name"))] = [source.node, source.slot]
                elif isinstance(source, _Value):
                    inputs[str(entry.get("name"))] = source.value
            title = node.get("title") if isinstance(node.get("title"), str) else kind
            self.prompt[scope.prefix + node_id] = {
                "inputs": inputs,
                "class_type": kind,
                "_meta": {"title": title},
            }

    def _child(self, scope: _Scope, instance: dict[str, Any]) -> _Scope:
        if scope.depth >= MAX_DEPTH:
            raise ConversionError(f"subgraphs nested deeper than {MAX_DEPTH} levels (or one contains itself)")
        definition = self.subgraphs[str(instance.get("type"))]
        child = _Scope(
            _nodes(definition),
            _links(definition.get("links")),
            f"{scope.prefix}{instance.get('id')}:",
            scope.depth + 1,
            scope,
            instance,
            definition,
        )
        child.promoted = _promoted(instance, definition, child)
        return child

    # -- where a value comes from --

    def _source(self, scope: _Scope, origin: str, slot: int, hops: int = 0) -> _Source:
        if hops > MAX_HOPS:
            raise ConversionError("a link loops through reroutes, bypassed nodes or subgraphs")
        input_id = str(scope.definition.get("inputNode", {}).get("id", SUBGRAPH_INPUT))
        if scope.parent is not None and origin == input_id:
            return self._from_instance(scope, slot, hops)
        node = scope.nodes.get(origin)
        if node is None or node.get("mode", 0) == MUTED:
            return None
        kind = str(node.get("type", ""))
        if node.get("mode", 0) == BYPASSED:
            return self._through_bypass(scope, node, slot, hops)
        if kind in self.subgraphs:
            child = self._child(scope, node)
            found = _output_link(child, slot)
            return self._source(child, found[0], found[1], hops + 1) if found else None
        if kind == "Reroute":
            return self._input_source(scope, node, 0, hops)
        if kind == "PrimitiveNode":
            values = node.get("widgets_values")
            return _Value(values[0]) if isinstance(values, list) and values else None
        return _Link(scope.prefix + origin, slot)

    def _input_source(self, scope: _Scope, node: dict[str, Any], index: int, hops: int) -> _Source:
        entries = node.get("inputs") or []
        entry = entries[index] if 0 <= index < len(entries) and isinstance(entries[index], dict) else {}
        link = scope.links.get(str(entry.get("link")))
        return self._source(scope, link[0], link[1], hops + 1) if link else None

    def _through_bypass(self, scope: _Scope, node: dict[str, Any], slot: int, hops: int) -> _Source:
        # The frontend's rule: the input at the same index when its type matches, else the first input
        # of the output's type.
        outputs = node.get("outputs") or []
        wanted = (
            outputs[slot].get("type")
            if 0 <= slot < len(outputs) and isinstance(outputs[slot], dict)
            else None
        )
        entries = [e if isinstance(e, dict) else {} for e in node.get("inputs") or []]

        def fits(entry: dict[str, Any]) -> bool:
            return entry.get("type") in (wanted, "*") or wanted == "*"

        order = ([slot] if slot < len(entries) and fits(entries[slot]) else []) + [
            i for i, e in enumerate(entries) if fits(e) and i != slot
        ]
        return self._input_source(scope, node, order[0], hops) if order else None

    def _from_instance(self, scope: _Scope, slot: int, hops: int) -> _Source:
        assert scope.parent is not None and scope.instance is not None
        declared = scope.definition.get("inputs") or []
        name = (
            declared[slot].get("name")
            if 0 <= slot < len(declared) and isinstance(declared[slot], dict)
            else None
        )
        entries = [e for e in scope.instance.get("inputs") or [] if isinstance(e, dict)]
        entry = next((e for e in entries if e.get("name") == name), None)
        link = scope.parent.links.get(str(entry.get("link"))) if entry else None
        if link:
            return self._source(scope.parent, link[0], link[1], hops + 1)
        return _Value(scope.promoted[slot]) if slot in scope.promoted else None


def widget_values(node: Mapping[str, Any], declared: Mapping[str, NodeInput]) -> dict[str, Any]:
    """A node's widget values by input name, in the order of its definition's widget inputs; a widget
    the saved values leave out has its default, as the frontend creates it."""
    widgets = [(name, spec) for name, spec in declared.items() if is_widget(spec)]
    raw = node.get("widgets_values")
    values = list(raw) if isinstance(raw, list) else []
    saved = _saved_values(widgets, values)
    if isinstance(raw, dict):
        saved = {name: raw[name] for name, _spec in widgets if name in raw}
    for name, spec in widgets:
        default = spec.options[0] if spec.default is None and spec.options else spec.default
        if name not in saved and default is not None:
            saved[name] = default
    return saved


def _saved_values(widgets: list[tuple[str, NodeInput]], values: list[Any]) -> dict[str, Any]:
    # In order, as the frontend assigns them: a widget with a control or an upload button is followed
    # by that widget's value, which no input takes.
    found: dict[str, Any] = {}
    at = 0
    for name, spec in widgets:
        if at >= len(values):
            break
        found[name] = values[at]
        at += 1 + (has_control(name, spec) or spec.upload)
    return found


def is_widget(spec: NodeInput) -> bool:
    """Whether the frontend shows this input as a widget (a value, not only a socket)."""
    return spec.type in WIDGET_TYPES and not spec.force_input


def has_control(name: str, spec: NodeInput) -> bool:
    """Whether the frontend adds a "control after generate" widget after this one."""
    if spec.control_after_generate is not None:
        return spec.control_after_generate
    return spec.type == "INT" and name in SEED_NAMES


def _nodes(holder: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = holder.get("nodes")
    return {str(n.get("id")): n for n in nodes if isinstance(n, dict)} if isinstance(nodes, list) else {}


def _links(raw: object) -> dict[str, tuple[str, int, str, int]]:
    """Links by id, from the root's ``[id, origin, slot, target, slot, type]`` lists or subgraph objects."""
    found: dict[str, tuple[str, int, str, int]] = {}
    for link in raw if isinstance(raw, list) else []:
        try:
            if isinstance(link, dict):
                found[str(link["id"])] = (
                    str(link["origin_id"]),
                    int(link["origin_slot"]),
                    str(link["target_id"]),
                    int(link["target_slot"]),
                )
            elif isinstance(link, list) and len(link) >= 5:
                found[str(link[0])] = (str(link[1]), int(link[2]), str(link[3]), int(link[4]))
        except (KeyError, TypeError, ValueError):
            raise ConversionError(f"a link is malformed: {str(link)[:100]}") from None
    return found


def _output_link(scope: _Scope, slot: int) -> tuple[str, int] | None:
    """The inner origin of a subgraph's output ``slot``."""
    output_id = str(scope.definition.get("outputNode", {}).get("id", SUBGRAPH_OUTPUT))
    for origin, origin_slot, target, target_slot in scope.links.values():
        if target == output_id and target_slot == slot:
            return origin, origin_slot
    return None


def _promoted(instance: Mapping[str, Any], definition: Mapping[str, Any], scope: _Scope) -> dict[int, Any]:
    """The values the subgraph node's own widgets give its inputs, by subgraph input slot.

    The instance's ``widgets_values`` follow ``properties.proxyWidgets`` when it has them (``["-1",
    name]`` is a subgraph input; other entries show an inner widget, whose value lives in that node),
    else the subgraph inputs that feed a widget, in input order."""
    declared = [i if isinstance(i, dict) else {} for i in definition.get("inputs") or []]
    values = instance.get("widgets_values")
    if not isinstance(values, list) or not values:
        return {}
    slots = {str(i.get("name")): n for n, i in enumerate(declared)}
    proxies = (instance.get("properties") or {}).get("proxyWidgets")
    if isinstance(proxies, list) and len(proxies) == len(values):
        return {
            slots[str(p[1])]: v
            for p, v in zip(proxies, values, strict=True)
            if isinstance(p, list) and len(p) == 2 and str(p[0]) == "-1" and str(p[1]) in slots
        }
    fed = [n for n, item in enumerate(declared) if _feeds_widget(item, scope)]
    return dict(zip(fed, values, strict=False)) if len(fed) == len(values) else {}


def _feeds_widget(item: Mapping[str, Any], scope: _Scope) -> bool:
    for link_id in item.get("linkIds") or []:
        link = scope.links.get(str(link_id))
        target = scope.nodes.get(link[2]) if link else None
        entries = target.get("inputs") if target else None
        if link and isinstance(entries, list) and 0 <= link[3] < len(entries):
            if isinstance(entries[link[3]], dict) and entries[link[3]].get("widget"):
                return True
    return False
