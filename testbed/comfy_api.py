"""A minimal client of ComfyUI's own HTTP API (``/prompt``, ``/history``, ``/upload/image``).

This is what an external bridge would do; tests use it to prove the test bed and to act as "another
user" of the same ComfyUI, and benchmarks use it as the baseline.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any


def _request(url: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 - loopback test server
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        raw = resp.read()
    return json.loads(raw) if raw else None


def submit(base_url: str, prompt: dict[str, Any], client_id: str | None = None) -> str:
    """POST a workflow to ``/prompt``; return its prompt id."""
    reply = _request(f"{base_url}/prompt", {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex})
    return str(reply["prompt_id"])


def history(base_url: str, prompt_id: str) -> dict[str, Any] | None:
    """The history entry of a prompt, or None while it has none."""
    entry = _request(f"{base_url}/history/{prompt_id}")
    return entry.get(prompt_id) if entry else None


def wait(base_url: str, prompt_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll ``/history`` until the prompt finished; return its entry (raises on time-out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = history(base_url, prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(0.05)
    raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")


def output_images(entry: dict[str, Any]) -> list[dict[str, str]]:
    """The ``{filename, subfolder, type}`` records of every image a finished prompt produced."""
    images: list[dict[str, str]] = []
    for node_output in entry.get("outputs", {}).values():
        images.extend(node_output.get("images", []))
    return images


def queue(base_url: str) -> dict[str, Any]:
    """``GET /queue``: running and pending items."""
    return dict(_request(f"{base_url}/queue"))
