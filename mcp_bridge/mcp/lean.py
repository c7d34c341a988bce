"""What ``tools/list`` says, said once and without what the schema already says (issue 25).

Every advertised schema passes through here. Pydantic's JSON Schema is written for validators, not
for an assistant reading it in every conversation: a title per property (its name again), the model's
docstring, ``anyOf [X, null]`` plus ``"default": null`` for every optional argument, ``$defs`` and
``$ref`` indirection, empty defaults, docstrings indented by their source. The tools validate their
arguments with their own models, never with the advertised schema, so leaning it changes what is
*said*, not what is *accepted*: an optional argument is advertised as X (omit it for none) while
``null`` is still accepted; every bound, enum, multiple and required list stays.

Output schemas keep their ``null`` branches (clients validate structured results against them) and
lose their descriptions: the result itself carries the same names, with their values.
"""

from __future__ import annotations

import copy
from typing import Any

from mcp.types import ToolAnnotations

# The values MCP gives a hint when a tool leaves it out: saying them again costs bytes and means nothing.
_HINT_DEFAULTS = {
    "read_only_hint": False,
    "destructive_hint": True,
    "idempotent_hint": False,
    "open_world_hint": True,
}


def text(description: str | None) -> str | None:
    """A docstring on one line: its indentation and line breaks are one space each."""
    if description is None:
        return None
    return " ".join(description.split())


def hints(found: ToolAnnotations | None) -> ToolAnnotations | None:
    """``found`` without the hints that only repeat MCP's defaults."""
    if found is None:
        return None
    kept = {
        name: value
        for name, value in found.model_dump(exclude_none=True).items()
        if _HINT_DEFAULTS.get(name, object()) != value
    }
    if kept.get("read_only_hint"):  # MCP: the other two mean something only for a tool that writes
        kept.pop("destructive_hint", None)
        kept.pop("idempotent_hint", None)
    return ToolAnnotations(**kept)


def input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The advertised input schema of a tool (a new dict; ``schema`` is left as it was)."""
    found = _inline(copy.deepcopy(schema))
    found.pop("description", None)  # "Arguments of <tool>.": the tool's own description says it
    leaned: dict[str, Any] = _walk(found, arguments=True)
    return leaned


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The advertised output schema: titles and descriptions gone, references inlined, ``null`` kept."""
    leaned: dict[str, Any] = _walk(_inline(copy.deepcopy(schema)), arguments=False)
    return leaned


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace each ``{"$ref": "#/$defs/X"}`` by X itself (without its docstring); recursive ones stay."""
    defs = schema.pop("$defs", None)
    if not isinstance(defs, dict):
        return schema
    recursive: set[str] = set()

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
            name = ref.removeprefix("#/$defs/")
            if name in seen or name not in defs:
                recursive.add(name)
                return node
            target = dict(defs[name])
            target.pop("description", None)  # the class docstring; the property's own description says it
            return resolve(target, (*seen, name))
        return {key: resolve(value, seen) for key, value in node.items()}

    found: dict[str, Any] = resolve(schema, ())
    if recursive:
        found["$defs"] = {name: defs[name] for name in sorted(recursive)}
    return found


def _walk(node: Any, *, arguments: bool) -> Any:
    if isinstance(node, list):
        return [_walk(item, arguments=arguments) for item in node]
    if not isinstance(node, dict):
        return node
    node.pop("title", None)
    if not arguments:
        node.pop("description", None)
    elif isinstance(node.get("description"), str):
        node["description"] = text(node["description"])
    for key in ("minimum", "maximum", "default", "multipleOf"):
        if isinstance(node.get(key), float) and node[key].is_integer() and abs(node[key]) < 2**53:
            node[key] = int(node[key])  # 30 says what 30.0 says
    for key in ("properties", "$defs"):
        names = node.get(key)
        if isinstance(names, dict):  # a map of names, not a schema: a property called "title" stays
            node[key] = {name: _property(value, arguments=arguments) for name, value in names.items()}
    for key, value in list(node.items()):
        if key not in ("properties", "$defs", "default", "enum", "const", "examples"):
            node[key] = _walk(value, arguments=arguments)
    return node


def _property(node: Any, *, arguments: bool) -> Any:
    """One named property: for arguments, ``anyOf [X, null]`` defaulting to null is just X."""
    if not isinstance(node, dict):
        return node
    if arguments:
        branches = node.get("anyOf")
        if (
            isinstance(branches, list)
            and len(branches) == 2
            and {"type": "null"} in branches
            and node.get("default", None) is None
        ):
            (kept,) = [branch for branch in branches if branch != {"type": "null"}]
            node.pop("anyOf")
            node.pop("default", None)
            node = {**kept, **node}
        if node.get("default", 0) in ([], {}):
            node.pop("default")
        if node.get("minLength") == 0:
            node.pop("minLength")
    return _walk(node, arguments=arguments)
