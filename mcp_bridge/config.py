"""The bridge's settings: defaults, a JSON file in ComfyUI's user folder, environment variables.

Precedence, lowest first: the defaults declared on :class:`Settings`, the file
``<ComfyUI user folder>/comfyui-mcp-bridge.json``, then environment variables named
``COMFYUI_MCP_<FIELD NAME IN UPPER CASE>`` (for example ``COMFYUI_MCP_MAX_SESSIONS=16``).

Adding a setting means adding one field to :class:`Settings` with a default and, where it helps, a
``metadata`` entry: ``doc`` (one line, shown in errors and docs), ``min``/``max`` for numbers,
``choices`` for strings. Supported field types: ``bool``, ``int``, ``float``, ``str`` and
``list[str]``. In environment variables a list is comma-separated (or a JSON array), a bool is one of
``1/true/yes/on`` or ``0/false/no/off``.

Settings are read once when ComfyUI loads the extension; changes need a restart. This module does not
import ComfyUI: the caller hands in the user folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import tempfile
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("comfyui_mcp_bridge")

SETTINGS_FILE = "comfyui-mcp-bridge.json"
ENV_PREFIX = "COMFYUI_MCP_"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A setting has a value the bridge cannot use; the message names the setting and the source."""


@dataclass
class Settings:
    """Every setting of the bridge, with its default."""

    require_token_on_loopback: bool = field(
        default=False,
        metadata={
            "doc": "Require the bearer token even when ComfyUI listens on loopback only. Off by default: "
            "there the Host/Origin checks stop browsers, and local processes can already use "
            "ComfyUI's own unauthenticated API. Always required beyond loopback or with CORS."
        },
    )
    extra_allowed_hosts: list[str] = field(
        default_factory=list,
        metadata={"doc": "More Host header names accepted on MCP routes (name, or name:port)."},
    )
    extra_allowed_origins: list[str] = field(
        default_factory=list,
        metadata={
            "doc": "More browser origins accepted on MCP routes, e.g. https://app.example:8443 or "
            "http://tool.lan:* (any port)."
        },
    )
    max_body_bytes: int = field(
        default=16 * 1024 * 1024,  # room for an 8 MiB image sent inline as base64 (~11 MB)
        metadata={
            "doc": "Largest MCP request body accepted, in bytes (413 above).",
            "min": 1024,
            "max": 256 * 1024 * 1024,
        },
    )
    max_resource_read_bytes: int = field(
        default=512 * 1024,
        metadata={
            "doc": "Largest output file resources/read sends (base64 in one message: 512 KiB is about "
            "700 KB on the wire, under the 1 MiB an SDK client reads at once); a larger one is refused "
            "with its link and ComfyUI's /view URL, which serves any size.",
            "min": 64 * 1024,
            "max": 256 * 1024 * 1024,
        },
    )
    max_sessions: int = field(
        default=64,
        metadata={
            "doc": "Concurrent Streamable HTTP sessions (2025 protocol era). At the limit a new session "
            "replaces the least recently used idle one; 503 only while every session has a request in "
            "flight.",
            "min": 1,
            "max": 10_000,
        },
    )
    max_sse_streams: int = field(
        default=32,
        metadata={"doc": "Concurrent legacy SSE streams (GET /mcp/sse); 503 above.", "min": 1, "max": 10_000},
    )
    max_open_requests: int = field(
        default=256,
        metadata={
            "doc": "Concurrent MCP HTTP requests of all kinds (2026-era calls have no session to cap); "
            "503 above.",
            "min": 1,
            "max": 100_000,
        },
    )
    request_body_timeout_s: float = field(
        default=30.0,
        metadata={
            "doc": "Seconds a client may take to send a request's body on the MCP routes (408 after). "
            "Bodies still arriving hold max_open_requests places of their own; when all are taken the "
            "one reading longest gives its place up (408).",
            "min": 1.0,
            "max": 3600.0,
        },
    )
    stream_stall_timeout_s: float = field(
        default=60.0,
        metadata={
            "doc": "Seconds one write to a client's stream (SSE events, streamed replies) may wait for the "
            "client to read; then the connection is closed (a legacy SSE session ends with it).",
            "min": 1.0,
            "max": 3600.0,
        },
    )
    max_session_requests: int = field(
        default=32,
        metadata={
            "doc": "Requests one legacy SSE session may have whose replies are not yet on its event "
            "stream (429 above): bounds what a client that does not read its stream can pile up.",
            "min": 1,
            "max": 10_000,
        },
    )
    session_idle_timeout_s: float = field(
        default=600.0,
        metadata={
            "doc": "Seconds without any request after which a Streamable HTTP session is closed.",
            "min": 5.0,
            "max": 7 * 24 * 3600.0,
        },
    )
    session_handshake_timeout_s: float = field(
        default=60.0,
        metadata={
            "doc": "Seconds a Streamable HTTP session that sent nothing after `initialize` is kept before "
            "it is closed (such sessions would otherwise hold a place under max_sessions).",
            "min": 1.0,
            "max": 7 * 24 * 3600.0,
        },
    )
    call_wait_s: float = field(
        default=45.0,
        metadata={
            "doc": "How long a generation call waits for its job before returning a job handle.",
            "min": 1.0,
            "max": 3600.0,
        },
    )
    max_batch_items: int = field(
        default=16,
        metadata={
            "doc": "Most items (ComfyUI prompts) one generate_batch call may queue; more is refused before "
            "anything is queued.",
            "min": 1,
            "max": 256,
        },
    )
    result_inline_bytes: int = field(
        default=1024 * 1024,
        metadata={
            "doc": "Budget of inline (base64) preview data in one tool result; above it the previews are "
            "replaced by one labelled contact sheet, and every file keeps its link.",
            "min": 64 * 1024,
            "max": 64 * 1024 * 1024,
        },
    )
    output_roots: list[str] = field(
        default_factory=list,
        metadata={"doc": "Extra folders a caller may write results into (ComfyUI's output folder always)."},
    )
    use_client_roots: bool = field(
        default=True,
        metadata={
            "doc": "Let clients' declared MCP roots count as allowed output folders (only while "
            "ComfyUI listens on loopback; a filesystem root or a bare home folder never counts)."
        },
    )
    default_width: int = field(
        default=512, metadata={"doc": "Width when a call gives none.", "min": 64, "max": 16384}
    )
    default_height: int = field(
        default=768, metadata={"doc": "Height when a call gives none.", "min": 64, "max": 16384}
    )
    default_steps: int = field(
        default=28, metadata={"doc": "Sampler steps when a call gives none.", "min": 1, "max": 10000}
    )
    default_cfg_scale: float = field(
        default=7.0, metadata={"doc": "CFG scale when a call gives none.", "min": 0.0, "max": 30.0}
    )
    default_sampler: str = field(
        default="euler_ancestral", metadata={"doc": "Sampler when a call gives none."}
    )
    default_scheduler: str = field(default="normal", metadata={"doc": "Scheduler when a call gives none."})
    max_side: int = field(
        default=2048,
        metadata={
            "doc": "Largest width or height a call may ask for (pixels, multiple of 8).",
            "min": 64,
            "max": 16384,
        },
    )
    max_video_frames: int = field(
        default=64,
        metadata={
            "doc": "Most images one call may turn into a video (images_to_video's frames).",
            "min": 1,
            "max": 4096,
        },
    )
    max_pixels: int = field(
        default=2048 * 2048,
        metadata={
            "doc": "Largest width x height x batch_size of one call (also of a result made from an input "
            "image: img2img and inpaint keep its size, upscale_image multiplies it by the model's scale).",
            "min": 4096,
            "max": 16384 * 16384,
        },
    )
    max_video_pixels: int = field(
        default=2**27,
        metadata={
            "doc": "Largest frames x width x height of one video (generate_video, images_to_video, "
            "images_to_animation); 134217728 is 121 frames of 1280x720 or 32 of 2048x2048.",
            "min": 4096,
            "max": 2**40,
        },
    )
    fetch_url_hosts: list[str] = field(
        default_factory=list,
        metadata={
            "doc": "Hosts whose https:// URLs input images may be (exact names, e.g. images.example.com). "
            "Empty: URLs are never fetched. Names resolving to loopback, private or link-local "
            "addresses are refused; redirects only within the same host.",
        },
    )
    fetch_timeout_s: float = field(
        default=20.0,
        metadata={
            "doc": "Seconds one image fetched from a URL may take, redirects included.",
            "min": 1.0,
            "max": 300.0,
        },
    )
    max_input_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata={
            "doc": "Largest input image (file, base64 or URL), in bytes. Base64 inputs also count against "
            "max_body_bytes.",
            "min": 64 * 1024,
            "max": 64 * 1024 * 1024,
        },
    )
    default_model: str = field(
        default="",
        metadata={
            "doc": "Checkpoint used when a call names none (empty: the only one installed; with several, "
            "calls must name one)."
        },
    )
    staged_input_max_age_s: float = field(
        default=86400.0,
        metadata={
            "doc": "Staged input copies in input/mcp/ older than this are removed (at start-up, then "
            "hourly).",
            "min": 60.0,
            "max": 31536000.0,
        },
    )
    tool_folders: list[str] = field(
        default_factory=list,
        metadata={
            "doc": "Folders of tool specs (workflow JSON files with a _bridge tool declaration) served as "
            "tools besides the built-in ones."
        },
    )
    tool_profile: str = field(
        default="full",
        metadata={
            "doc": "Which tools tools/list shows: full (every tool), core (the main nine, the job tools, "
            "run_tool and describe_tool) or compact (generate_image, run_tool, describe_tool: for small "
            "models). Every tool stays callable by name and through run_tool. The panel edits it live.",
            "choices": ("full", "core", "compact"),
        },
    )
    keep_staged_inputs: bool = field(
        default=False,
        metadata={
            "doc": "Keep the copies of input images a call staged in ComfyUI's input/mcp/ folder after its "
            "job ends (default: removed when the job ends)."
        },
    )
    instance_id: str = field(
        default="",
        metadata={
            "doc": "This instance's id in job ids and output links (1-16 lowercase letters or digits). "
            "Empty: derived from the host name and ComfyUI's port (6 hex digits, stable across restarts).",
            "pattern": r"(|[a-z0-9]{1,16})",
        },
    )
    peers: list[str] = field(
        default_factory=list,
        metadata={
            "doc": "Other instances behind the same URL, as id=URL of their MCP endpoint (e.g. "
            "b=http://10.0.0.2:8188/mcp). Calls about their jobs and outputs are forwarded there; an "
            "entry naming this instance is skipped, so every instance can share one list.",
            "pattern": r"[a-z0-9]{1,16}=https?://\S+",
        },
    )
    peer_tokens: list[str] = field(
        default_factory=list,
        metadata={
            "doc": "Bearer tokens for peers, as id=token; sent only to that peer's configured URL.",
            "pattern": r"[a-z0-9]{1,16}=\S+",
        },
    )
    peer_timeout_s: float = field(
        default=10.0,
        metadata={
            "doc": "Seconds to connect to a peer and for each forwarded call beyond its own wait (a peer "
            "that does not answer in time is a tool error naming it).",
            "min": 0.5,
            "max": 300.0,
        },
    )
    debug_tools: bool = field(
        default=False,
        metadata={
            "doc": "Expose diagnostic tools used by the test suite (debug_run_workflow queues raw "
            "workflows). Keep off."
        },
    )


def field_names() -> list[str]:
    """Names of all settings, in declaration order."""
    return [f.name for f in dataclasses.fields(Settings)]


def env_name(name: str) -> str:
    """The environment variable that sets the field ``name``."""
    return ENV_PREFIX + name.upper()


def settings_path(user_directory: str | os.PathLike[str]) -> Path:
    """Where the settings file lives inside ComfyUI's user folder."""
    return Path(user_directory) / SETTINGS_FILE


def load(
    user_directory: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read the settings: defaults, then the file (if present), then the environment.

    Raises :class:`ConfigError` naming the offending setting and its source. Unknown keys in the file
    are ignored with a warning (a newer version of the bridge may have written them).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if user_directory is not None:
        path = settings_path(user_directory)
        values.update(_read_file(path))
    for name in field_names():
        raw = env.get(env_name(name))
        if raw is not None:
            values[name] = _coerce(name, _hints()[name], _from_env(name, raw), env_name(name))
    return from_dict(values, source=str(settings_path(user_directory)) if user_directory else "settings")


def load_or_report(
    user_directory: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
) -> tuple[Settings, str | None]:
    """Like :func:`load`, but return the defaults and the error text instead of raising."""
    try:
        return load(user_directory, env), None
    except ConfigError as exc:
        log.error("comfyui-mcp-bridge settings: %s", exc)
        return Settings(), str(exc)


def from_dict(values: Mapping[str, Any], *, source: str = "settings") -> Settings:
    """Build validated settings from plain values (as found in the JSON file)."""
    known = set(field_names())
    unknown = sorted(set(values) - known)
    if unknown:
        log.warning("comfyui-mcp-bridge %s: ignoring unknown setting(s) %s", source, ", ".join(unknown))
    hints = _hints()
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name in known:
            kwargs[name] = _coerce(name, hints[name], value, source)
    settings = Settings(**kwargs)
    validate(settings)
    return settings


def to_dict(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-safe plain values."""
    return dataclasses.asdict(settings)


def validate(settings: Settings) -> Settings:
    """Check every field against its type and bounds; return the settings or raise ConfigError."""
    hints = _hints()
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        _coerce(f.name, hints[f.name], value, "settings")  # type check (raises on mismatch)
        meta = f.metadata
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name}: must be a finite number, got {value!r}")
            low, high = meta.get("min"), meta.get("max")
            if low is not None and value < low:
                raise ConfigError(f"{f.name}: must be at least {low}, got {value!r}")
            if high is not None and value > high:
                raise ConfigError(f"{f.name}: must be at most {high}, got {value!r}")
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{f.name}: must be one of {', '.join(map(str, choices))}, got {value!r}")
        if isinstance(value, list):
            for item in value:
                if not item.strip():
                    raise ConfigError(f"{f.name}: entries must not be empty")
        _check_pattern(f.name, meta.get("pattern"), value)
    return settings


def _check_pattern(name: str, pattern: str | None, value: Any) -> None:
    if pattern is None:
        return
    for item in value if isinstance(value, list) else [value]:
        if not re.fullmatch(pattern, item):
            shown = "an entry" if "token" in name else repr(item[:120])  # never echo a secret
            raise ConfigError(f"{name}: {shown} does not match {pattern}")


def save(settings: Settings, user_directory: str | os.PathLike[str]) -> Path:
    """Validate and write the settings file atomically; return its path."""
    validate(settings)
    path = settings_path(user_directory)
    _write_atomically(path, json.dumps(to_dict(settings), indent=2, sort_keys=True) + "\n")
    return path


def update_file(user_directory: str | os.PathLike[str], changes: Mapping[str, Any]) -> Path:
    """Change some keys of the settings file, keeping every other key as the person wrote it."""
    path = settings_path(user_directory)
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        current = {}
    if not isinstance(current, dict):
        raise ConfigError(f"{path} must hold a JSON object of settings")
    current.update(changes)
    from_dict(current, source=str(path))  # validate before writing
    _write_atomically(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
    return path


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".comfyui-mcp-bridge.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- internals -------------------------------------------------------------------------------


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(Settings)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(f"{path} is not valid JSON ({where}): {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object of settings, not {type(data).__name__}")
    return data


def _from_env(name: str, raw: str) -> Any:
    """Turn an environment string into a plain value of the field's type."""
    kind = _hints()[name]
    text = raw.strip()
    where = env_name(name)
    if kind is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{where}: expected one of 1/true/yes/on or 0/false/no/off, got {raw!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
    if kind == list[str]:
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"{where}: not a valid JSON array: {raw!r}") from None
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    return raw


def _coerce(name: str, kind: Any, value: Any, source: str) -> Any:
    """Check ``value`` against the field type (JSON values: ints are accepted for floats)."""
    where = f"{source}: {name}"
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if kind == list[str]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    raise ConfigError(f"{where}: unsupported setting type {kind!r}")  # a programming error
