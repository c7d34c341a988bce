"""Settings: defaults, the JSON file in ComfyUI's user folder, COMFYUI_MCP_* variables, validation."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from mcp_bridge import config
from mcp_bridge.config import ConfigError, Settings


def write_settings(folder: Path, data: object) -> Path:
    path = folder / config.SETTINGS_FILE
    path.write_text(json.dumps(data))
    return path


def test_defaults_are_valid_and_documented() -> None:
    settings = config.load(None, env={})
    assert settings == Settings()
    assert settings.require_token_on_loopback is False
    assert settings.call_wait_s == 45.0
    assert settings.max_sessions > 0 and settings.max_sse_streams > 0
    for f in dataclasses.fields(Settings):
        assert f.metadata.get("doc"), f"{f.name} has no doc"


def test_a_missing_file_means_defaults(tmp_path: Path) -> None:
    assert config.load(tmp_path, env={}) == Settings()


def test_the_file_overrides_defaults_and_the_environment_overrides_the_file(tmp_path: Path) -> None:
    write_settings(tmp_path, {"max_sessions": 8, "extra_allowed_hosts": ["box.lan"], "call_wait_s": 30})
    settings = config.load(tmp_path, env={"COMFYUI_MCP_MAX_SESSIONS": "16"})
    assert settings.max_sessions == 16
    assert settings.extra_allowed_hosts == ["box.lan"]
    assert settings.call_wait_s == 30.0 and isinstance(settings.call_wait_s, float)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a.lan, b.lan", ["a.lan", "b.lan"]), ('["x.lan", "y.lan:8188"]', ["x.lan", "y.lan:8188"]), ("", [])],
    ids=["comma-separated", "json-array", "empty"],
)
def test_list_settings_from_the_environment(raw: str, expected: list[str]) -> None:
    settings = config.load(None, env={"COMFYUI_MCP_EXTRA_ALLOWED_HOSTS": raw})
    assert settings.extra_allowed_hosts == expected


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("Yes", True), ("off", False), ("FALSE", False)])
def test_bool_settings_from_the_environment(raw: str, expected: bool) -> None:
    settings = config.load(None, env={"COMFYUI_MCP_REQUIRE_TOKEN_ON_LOOPBACK": raw})
    assert settings.require_token_on_loopback is expected


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"COMFYUI_MCP_MAX_SESSIONS": "many"}, "COMFYUI_MCP_MAX_SESSIONS"),
        ({"COMFYUI_MCP_REQUIRE_TOKEN_ON_LOOPBACK": "maybe"}, "COMFYUI_MCP_REQUIRE_TOKEN_ON_LOOPBACK"),
        ({"COMFYUI_MCP_CALL_WAIT_S": "soon"}, "COMFYUI_MCP_CALL_WAIT_S"),
        ({"COMFYUI_MCP_OUTPUT_ROOTS": "[1, 2]"}, "COMFYUI_MCP_OUTPUT_ROOTS"),
        ({"COMFYUI_MCP_MAX_SESSIONS": "0"}, "max_sessions"),
        ({"COMFYUI_MCP_CALL_WAIT_S": "nan"}, "call_wait_s"),
    ],
    ids=["int", "bool", "float", "list-items", "below-minimum", "not-finite"],
)
def test_bad_environment_values_are_named_in_the_error(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        config.load(None, env=env)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_sessions": "8"}, "max_sessions: expected an integer"),
        ({"max_sessions": True}, "max_sessions: expected an integer"),
        ({"require_token_on_loopback": "yes"}, "expected true or false"),
        ({"extra_allowed_origins": "https://a.example"}, "expected a list of strings"),
        ({"extra_allowed_hosts": [" "]}, "must not be empty"),
        ({"max_body_bytes": 10}, "at least 1024"),
        ({"session_idle_timeout_s": 10**9}, "at most"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_file_values_are_rejected_with_a_clear_error(tmp_path: Path, data: object, message: str) -> None:
    write_settings(tmp_path, data)
    with pytest.raises(ConfigError, match=message):
        config.load(tmp_path, env={})


def test_invalid_json_names_the_file_and_position(tmp_path: Path) -> None:
    (tmp_path / config.SETTINGS_FILE).write_text('{"max_sessions": 8,\n}')
    with pytest.raises(ConfigError, match=r"not valid JSON \(line 2"):
        config.load(tmp_path, env={})


def test_unknown_keys_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_settings(tmp_path, {"max_sesions": 3, "max_sessions": 5})
    with caplog.at_level(logging.WARNING, logger="comfyui_mcp_bridge"):
        settings = config.load(tmp_path, env={})
    assert settings.max_sessions == 5
    assert "max_sesions" in caplog.text


def test_load_or_report_falls_back_to_defaults_and_returns_the_error(tmp_path: Path) -> None:
    write_settings(tmp_path, {"max_sessions": -1})
    settings, error = config.load_or_report(tmp_path, env={})
    assert settings == Settings()
    assert error is not None and "max_sessions" in error


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    wanted = Settings(
        require_token_on_loopback=True, extra_allowed_origins=["https://app.example"], max_sse_streams=3
    )
    path = config.save(wanted, tmp_path)
    assert path == tmp_path / config.SETTINGS_FILE
    assert config.load(tmp_path, env={}) == wanted
    assert not list(tmp_path.glob(".comfyui-mcp-bridge.*"))  # no temp file left behind


def test_save_refuses_invalid_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        config.save(Settings(max_sessions=0), tmp_path)
    assert not (tmp_path / config.SETTINGS_FILE).exists()


def test_every_field_has_an_env_variable_name() -> None:
    assert config.env_name("max_body_bytes") == "COMFYUI_MCP_MAX_BODY_BYTES"
    assert config.field_names()[0] == "require_token_on_loopback"
