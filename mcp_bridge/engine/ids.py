"""Job ids and output links that name the instance they belong to.

Several ComfyUI+bridge instances can sit behind one URL (a load balancer). A job id is
``<instance>.<uuid>`` and an output link ``comfy://<instance>/output/<subfolder>/<file>``, so any
instance can tell which one owns a handle and forward calls about it (:mod:`mcp_bridge.peers`), and
a balancer can route on the prefix (HAProxy: ``req.hdr(mcp-param-job-id),field(1,.)``).

Ids without an instance (older ``<uuid>`` job ids, ``comfy://output/...`` links) are this instance's.
"""

from __future__ import annotations

import hashlib
import re
import socket
import uuid
from dataclasses import dataclass

INSTANCE_PATTERN = r"[a-z0-9]{1,16}"
_INSTANCE = re.compile(INSTANCE_PATTERN)
_JOB_ID = re.compile(
    rf"({INSTANCE_PATTERN})\.([0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}})"
)
RESERVED_INSTANCE_IDS = frozenset({"output"})  # the host part of the older comfy://output/... links
OUTPUT_SCHEME = "comfy://"  # results link full files as comfy://<instance>/output/<subfolder>/<name>
LOCAL_OUTPUT_PREFIX = f"{OUTPUT_SCHEME}output/"


def valid_instance_id(text: str) -> bool:
    """Whether ``text`` can be an instance id (1–16 lowercase letters or digits, not ``output``)."""
    return bool(_INSTANCE.fullmatch(text)) and text not in RESERVED_INSTANCE_IDS


def derive_instance_id(host: str, port: int) -> str:
    """A short id stable across restarts of one ComfyUI (from its host name and port)."""
    return hashlib.sha256(f"{host.lower()}:{port}".encode()).hexdigest()[:6]


def instance_id(configured: str, port: int) -> str:
    """The ``instance_id`` setting, or the id derived from this host's name and ComfyUI's port."""
    return configured or derive_instance_id(socket.gethostname(), port)


def new_job_id(instance: str) -> str:
    """A fresh job id owned by ``instance``."""
    return f"{instance}.{uuid.uuid4()}"


@dataclass(frozen=True)
class Handle:
    """A job id or output link, split: ``instance`` None means it names no instance (this one's)."""

    instance: str | None
    text: str  # the whole handle, as given (stripped)


def parse_job_id(job_id: str) -> Handle:
    """The instance a job id names (None for an id of another shape: looked up here, as given)."""
    text = job_id.strip()
    match = _JOB_ID.fullmatch(text)
    return Handle(match.group(1) if match else None, text)


def output_link(instance: str, relative: str) -> str:
    """The ``comfy://`` link of ``subfolder/file`` in ``instance``'s output folder."""
    return f"{OUTPUT_SCHEME}{instance}/output/{relative}"


def parse_output_link(uri: str) -> tuple[str | None, str] | None:
    """``(instance, subfolder/file)`` of a ``comfy://`` output link; instance None for the older
    ``comfy://output/...`` form; None when ``uri`` is no output link."""
    text = uri.strip()
    if text.startswith(LOCAL_OUTPUT_PREFIX):
        return None, text[len(LOCAL_OUTPUT_PREFIX) :]
    if not text.startswith(OUTPUT_SCHEME):
        return None
    host, sep, rest = text[len(OUTPUT_SCHEME) :].partition("/output/")
    if not sep or not valid_instance_id(host) or not rest:
        return None
    return host, rest
