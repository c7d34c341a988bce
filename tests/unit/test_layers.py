"""The folders of ``mcp_bridge`` are the stages of the data flow; imports only point down the layers.

Checked on the real import graph (every ``import``/``from`` in every module, relative ones resolved,
including imports inside functions and ``TYPE_CHECKING`` blocks), not on names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mcp_bridge"

# Base modules every layer may use: settings, the version, address parsing.
BASE = frozenset({"config", "version", "addresses"})
# Folder -> the folders it may import (besides itself and BASE). Top to bottom: the wiring, the panel,
# the MCP handlers, the MCP server, delivery, specs, the job engine, codecs, the ComfyUI port.
ALLOWED: dict[str, frozenset[str]] = {
    "bridge": frozenset({"http", "panel", "tools", "mcp", "delivery", "specs", "engine", "media", "comfyui"}),
    "panel": frozenset({"http", "tools", "mcp", "delivery", "specs", "engine", "media", "comfyui"}),
    "tools": frozenset({"mcp", "delivery", "specs", "engine", "media", "comfyui"}),
    "mcp": frozenset({"delivery", "specs", "engine", "media", "comfyui"}),
    "http": frozenset(),
    "delivery": frozenset({"specs", "engine", "media", "comfyui"}),
    "specs": frozenset({"comfyui"}),
    "engine": frozenset({"comfyui"}),
    "media": frozenset({"comfyui"}),
    "comfyui": frozenset(),
    **{base: frozenset() for base in BASE},
}
# Folders that never import the MCP SDK (``mcp``): codecs, delivery, specs and the port speak plain
# Python; the tool layer turns their answers and exceptions into the SDK's types (tools/results.py,
# tools/errors.py). engine/ is not among them: its peers module is an MCP client of other instances.
SDK_FREE = frozenset({"delivery", "media", "specs", "comfyui"})
COMFYUI_MODULES = (
    "server",
    "execution",
    "folder_paths",
    "nodes",
    "comfy",
    "comfy_execution",
    "comfyui_version",
)


def _module_name(path: Path, package: Path = PACKAGE) -> tuple[str, bool]:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def imports_of(path: Path, package: Path = PACKAGE) -> list[str]:
    """Every module ``path`` imports, absolute, with ``from X import y`` also giving ``X.y``."""
    name, is_package = _module_name(path, package)
    here = name.split(".") if is_package else name.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append(target)
            found.extend(f"{target}.{alias.name}" for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    """The folder (or base module) of a ``mcp_bridge`` module; None for the package root."""
    parts = module.split(".")
    if parts[0] != "mcp_bridge" or len(parts) == 1:
        return None
    return parts[1]


def wrong_way_imports(package: Path = PACKAGE) -> list[str]:
    wrong = []
    for path in sorted(package.rglob("*.py")):
        module, _ = _module_name(path, package)
        layer = layer_of(module)
        if layer is None:  # the package root installs the bridge: it may import anything
            continue
        for target in imports_of(path, package):
            other = layer_of(target)
            if other is None or other == layer or other in BASE:
                continue
            if other not in ALLOWED.get(layer, frozenset()):
                wrong.append(f"{module} imports {target} ({layer} may not import {other})")
    return sorted(set(wrong))


def test_every_import_points_down_the_layers() -> None:
    assert wrong_way_imports() == []


def test_every_folder_is_in_the_table_and_says_what_it_is() -> None:
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        assert folder.name in ALLOWED, f"{folder.name}/ has no row in the layer table"
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"{folder.name}/__init__.py must say what it is and may import"


def test_only_the_comfyui_folder_imports_comfyui() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module, _ = _module_name(path)
        if layer_of(module) == "comfyui":
            continue
        for target in imports_of(path):
            if target.split(".")[0] in COMFYUI_MODULES:
                offenders.append(f"{module} imports {target}")
    assert offenders == []


def copy_package(tmp_path: Path) -> Path:
    """A copy of the package's sources under ``tmp_path`` (to add a wrong module to)."""
    copy = tmp_path / "mcp_bridge"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


def sdk_imports(package: Path = PACKAGE) -> list[str]:
    """Imports of the MCP SDK (the top-level ``mcp`` package) from the SDK-free folders."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module, _ = _module_name(path, package)
        if layer_of(module) in SDK_FREE:
            found += [f"{module} imports {t}" for t in imports_of(path, package) if t.split(".")[0] == "mcp"]
    return sorted(set(found))


def test_delivery_media_specs_and_the_port_never_import_the_mcp_sdk() -> None:
    assert sdk_imports() == []


def test_an_sdk_import_below_the_tool_layer_is_found(tmp_path: Path) -> None:
    copy = copy_package(tmp_path)
    (copy / "delivery" / "bad.py").write_text("from mcp.types import ImageContent\n", encoding="utf-8")
    assert sdk_imports(copy) == [
        "mcp_bridge.delivery.bad imports mcp.types",
        "mcp_bridge.delivery.bad imports mcp.types.ImageContent",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ..tools import pipeline\n", "mcp_bridge.engine.bad imports mcp_bridge.tools"),
        ("from ..http.security import Policy\n", "mcp_bridge.engine.bad imports mcp_bridge.http.security"),
    ],
)
def test_a_wrong_way_import_is_found(tmp_path: Path, source: str, expected: str) -> None:
    """The check itself: a copy of the package with one upward import fails it."""
    copy = copy_package(tmp_path)
    (copy / "engine" / "bad.py").write_text(source, encoding="utf-8")
    assert any(line.startswith(expected) for line in wrong_way_imports(copy))


def test_only_the_port_calls_comfyuis_server_methods() -> None:
    """ComfyUI's ``PromptServer`` API (``send_sync``, ``send``) is called from comfyui/ only."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module, _ = _module_name(path)
        if layer_of(module) == "comfyui":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("send_sync", "send_json", "send_bytes_sync"):
                    calls.append(f"{module}:{node.lineno} calls {node.func.attr}")
    assert calls == []
