"""How many of ComfyUI's templates the bridge converts and ComfyUI's own validation accepts.

For the templates package the test bed pins (what ComfyUI 0.3.75 serves) and for another package
folder (e.g. the newest ``comfyui-workflow-templates`` installed with ``pip install --target``):
templates, converted (every node type installed), validated by ComfyUI's ``validate_prompt`` with
placeholder files for the models the template declares and for its input files, and the failures
grouped by reason. With ``--autograph`` PyPI's comfyui-autograph converts the same graphs (same
placeholders, same validation) for comparison, and how many prompts equal ours is counted.

Runs ComfyUI's nodes in this process (no server):

    python bench/templates.py [--version 0.3.75] [--package DIR] [--autograph DIR] [--show 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed.server import comfyui_dir  # noqa: E402

INPUT_WIDGETS = {
    ("LoadImage", "image"),
    ("LoadImageMask", "image"),
    ("LoadVideo", "file"),
    ("LoadAudio", "audio"),
}


def load_comfyui(version: str) -> None:
    """ComfyUI's nodes in this process, as its main.py loads them (no custom nodes)."""
    tree = comfyui_dir(version)
    sys.path.insert(1, str(tree))
    os.chdir(tree)
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options
    import utils.install_util  # noqa: F401 - before anything imports a module named utils

    comfy.options.enable_args_parsing()
    logging.disable(logging.ERROR)
    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False))


def package_files(package: Path | None) -> dict[str, Path]:
    """Template files by name: what ComfyUI serves, or the ``templates`` folders under ``package``."""
    from mcp_bridge.comfyui import adapter

    if package is None:
        return adapter.template_files()
    return {p.name: p for p in sorted(package.glob("comfyui_workflow_templates*/templates/*.json"))}


def placeholders(root: Path, info: Any, prompt: dict[str, Any]) -> None:
    """Empty files for the models the template declares, tiny ones for the inputs its loaders name."""
    import folder_paths

    for model in info.models:
        target = root / "models" / model.folder / model.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        folder_paths.add_model_folder_path(model.folder, str(root / "models" / model.folder))
    for node in prompt.values():
        for widget, value in node["inputs"].items():
            if (node["class_type"], widget) in INPUT_WIDGETS and isinstance(value, str) and value:
                target = Path(folder_paths.get_input_directory()) / value.split(" [")[0]
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    _placeholder_input(target)


def _placeholder_input(target: Path) -> None:
    if target.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        from PIL import Image

        Image.new("RGB", (8, 8)).save(target)
    else:
        target.write_bytes(b"")


async def validation(prompt: dict[str, Any]) -> list[str]:
    """ComfyUI's reasons for refusing ``prompt`` (empty when it passes)."""
    import execution

    valid = await execution.validate_prompt("bench", prompt, None)
    if valid[0]:
        return []
    found = {
        f"{errors['class_type']}: {e['type']} {e.get('extra_info', {}).get('input_name', '')}".strip()
        for errors in valid[3].values()
        for e in errors["errors"]
    }
    return sorted(found) or [f"{valid[1].get('type')}: {valid[1].get('message', '')}"]


def measure(files: dict[str, Path], autograph: Any) -> dict[str, Any]:
    from mcp_bridge.comfyui import adapter
    from mcp_bridge.specs.templates import describe, index_entries
    from mcp_bridge.specs.ui_graph import ConversionError, convert

    cache: dict[str, Any] = {}

    def node_inputs(kind: str) -> Any:
        if kind not in cache:
            cache[kind] = adapter.node_inputs(kind)
        return cache[kind]

    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    theirs: collections.Counter[str] = collections.Counter()
    lacking: collections.Counter[str] = collections.Counter()
    index = json.loads(files["index.json"].read_text("utf-8")) if "index.json" in files else []
    with tempfile.TemporaryDirectory() as tmp:
        for category, entry in index_entries(index):
            path = files.get(f"{entry['name']}.json")
            if path is None:
                counts["listed without a file"] += 1
                continue
            counts["templates"] += 1
            workflow = json.loads(path.read_text("utf-8"))
            info = describe(category, entry, workflow)
            try:
                converted = convert(workflow, node_inputs)
            except ConversionError as exc:
                reasons[f"conversion: {exc}"] += 1
                continue
            if converted.missing:
                reasons["uses node types this ComfyUI lacks"] += 1
                lacking.update(converted.missing)
                continue
            counts["converted"] += 1
            placeholders(Path(tmp), info, converted.prompt)
            problems = asyncio.run(validation(converted.prompt))
            counts["validated"] += not problems
            reasons.update(problems)
            if autograph is not None:
                compare(autograph, workflow, converted.prompt, counts, theirs)
    return {"counts": counts, "reasons": reasons, "autograph": theirs, "lacking": lacking}


def compare(
    autograph: Any, workflow: dict[str, Any], ours: dict[str, Any], counts: collections.Counter[str], why: Any
) -> None:
    """Convert with comfyui-autograph, validate its prompt, count the prompts equal to ours."""
    try:
        result = autograph.convert.workflow_to_api_format(workflow, node_info=autograph.node_info)
    except Exception as exc:  # noqa: BLE001 - any failure of the other library is a figure
        why[f"autograph conversion: {type(exc).__name__}"] += 1
        return
    prompt = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in result.items()}
    counts["autograph converted"] += 1
    problems = asyncio.run(validation(prompt))
    counts["autograph validated"] += not problems
    why.update(problems)
    plain = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in ours.items()}
    counts["autograph equal to ours"] += plain == prompt


def load_autograph(folder: Path) -> Any:
    sys.path.insert(0, str(folder))
    module = importlib.import_module("autograph.convert")  # the package re-exports a function 'convert'

    class Autograph:
        convert = module
        node_info = module.node_info_from_comfyui_modules()

    return Autograph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="0.3.75", help="the ComfyUI tree whose nodes validate")
    parser.add_argument("--package", type=Path, help="a pip --target folder of a templates package")
    parser.add_argument("--autograph", type=Path, help="a folder holding comfyui-autograph's 'autograph'")
    parser.add_argument("--show", type=int, default=25, help="failure reasons to print")
    args = parser.parse_args()
    package = args.package.resolve() if args.package else None
    if package is not None:
        sys.path.insert(0, str(package))
    load_comfyui(args.version)
    autograph = load_autograph(args.autograph.resolve()) if args.autograph else None
    files = package_files(package)
    found = measure(files, autograph)
    where = str(package) if package else f"the package ComfyUI {args.version} serves"
    print(f"templates of {where} (nodes of ComfyUI {args.version}):")
    for key, value in found["counts"].items():
        print(f"  {key:28} {value}")
    print("failures by reason (a template may have several):")
    for reason, n in found["reasons"].most_common(args.show):
        print(f"  {n:4}  {reason}")
    print("node types lacking, by templates using them:")
    print("  " + ", ".join(f"{kind} {n}" for kind, n in found["lacking"].most_common(args.show)))
    for oracle in sorted((ROOT / "artifacts").glob("templates_oracle_*.json")):
        figures = json.loads(oracle.read_text("utf-8"))
        print(
            f"equal to the frontend's graphToPrompt ({oracle.stem.removeprefix('templates_oracle_')}, from "
            f"the browser test): {figures['equal']} of {figures['compared']} "
            f"({figures.get('equal_up_to_ids', 0)} up to node ids)"
        )
    if autograph is not None:
        print("comfyui-autograph's failures by reason:")
        for reason, n in found["autograph"].most_common(args.show):
            print(f"  {n:4}  {reason}")


if __name__ == "__main__":
    main()
