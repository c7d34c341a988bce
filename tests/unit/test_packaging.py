"""Packaging promises: one set of runtime dependencies, one version, documented settings, safe runtime."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import tomllib

from mcp_bridge import config
from mcp_bridge.version import __version__

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_requirements_txt_lists_exactly_the_pyproject_dependencies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == PYPROJECT["project"]["dependencies"]
    assert all(not line.startswith("-") for line in lines), "ComfyUI-Manager installs one specifier per line"


def test_the_package_version_matches_pyproject() -> None:
    assert __version__ == PYPROJECT["project"]["version"]


def test_the_registry_metadata_is_complete() -> None:
    project, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]{0,99}", project["name"])
    assert isinstance(project["license"], dict)
    assert project["urls"]["Repository"]
    for key in ("PublisherId", "DisplayName", "Icon", "includes", "requires-comfyui"):
        assert comfy[key], key


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [f.name for f in dataclasses.fields(config.Settings) if f"`{f.name}`" not in readme]
    assert not missing


def test_the_runtime_package_never_installs_or_executes_code() -> None:
    pattern = re.compile(r"subprocess|pip install|os\.system|\beval\(|\bexec\(")
    offenders = [
        str(path.relative_to(ROOT))
        for path in [ROOT / "__init__.py", *(ROOT / "mcp_bridge").rglob("*.py")]
        if pattern.search(path.read_text())
    ]
    assert not offenders


def test_only_the_adapter_imports_comfyui() -> None:
    pattern = re.compile(
        r"^\s*(import|from) (server|execution|folder_paths|nodes|comfy(\.|\s)|comfyui_version)", re.M
    )
    importers = sorted(
        p.relative_to(ROOT / "mcp_bridge").as_posix()
        for p in (ROOT / "mcp_bridge").rglob("*.py")
        if pattern.search(p.read_text())
    )
    assert importers == ["comfyui/adapter.py"]


def test_test_modules_have_unique_names() -> None:
    # tests/ folders are not packages: two modules of one name stop pytest's collection.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py") if "node_modules" not in p.parts]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_the_package_holds_no_symlink_and_no_bytecode() -> None:
    """What ComfyUI's custom-node policy refuses (README, Install): ``comfy node pack`` packs the git-tracked
    files, which hold no symlink and no bytecode, and walks the ``includes`` folders, which hold no Python."""
    tracked = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked
    assert [line for line in tracked if line.startswith("120000")] == []  # git's mode for a symlink
    paths = [line.split("\t", 1)[1] for line in tracked]
    assert [p for p in paths if "__pycache__" in p.split("/") or p.endswith((".pyc", ".pyo"))] == []
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "__pycache__/" in ignored and "*.pyc" in ignored
    for folder in PYPROJECT["tool"]["comfy"]["includes"]:
        assert [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".pyc") or p.is_symlink()] == []
