"""The result view (MCP Apps, ``io.modelcontextprotocol/ui``): one ``ui://`` HTML document bound to the
generation tools, ``generate_batch`` and ``wait_job``.

Hosts that render MCP Apps show it next to the call: progress with Cancel, the images read through
``resources/read``, their seed and parameters, and actions that call our tools through the host. It
reads only what every result already carries (structured content and ``comfy://output/...`` links), so
tool results are the same for every client; a client without the extension just ignores the
``_meta.ui`` of the tools. The document's Content-Security-Policy is built here from the hashes of its
one inline script and one inline style: nothing else may run or load.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Collection, Iterable
from pathlib import Path

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver.tools import Tool

VIEW_URI = "ui://comfyui-mcp-bridge/result.html"
VIEW_FILE = Path(__file__).resolve().parents[1] / "ui" / "result.html"
CSP_PLACEHOLDER = "__CSP__"
VIEW_TOOLS_ALWAYS = ("generate_batch", "wait_job")  # bound where served: a batch makes files too


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(html: str) -> str:
    """No network, no plugins, no frames; only the document's own inline script and style (by hash);
    images and media only from data the view read through the host (``data:``/``blob:``)."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    if len(scripts) != 1 or len(styles) != 1:
        raise ValueError("the result view needs exactly one inline <script> and one inline <style>")
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256(scripts[0])}",
            f"style-src {_sha256(styles[0])}",
            "img-src data: blob:",
            "media-src data: blob:",
            "connect-src 'none'",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


@functools.cache
def view_html() -> str:
    """The view's document as served, its CSP filled in."""
    html = VIEW_FILE.read_text(encoding="utf-8")
    return html.replace(CSP_PLACEHOLDER, content_security_policy(html), 1)


def view_tool_names(spec_outputs: Iterable[tuple[str, Collection[str] | None]]) -> list[str]:
    """The tools the view is bound to: every spec tool that makes files, generate_batch and wait_job."""
    return [name for name, kinds in spec_outputs if kinds is None or kinds] + list(VIEW_TOOLS_ALWAYS)


def bind_result_view(tools: Iterable[Tool], names: Collection[str]) -> Apps | None:
    """Stamp ``_meta.ui.resourceUri`` on the tools named ``names`` and return the Apps extension that
    serves the view (None when no tool is bound, so nothing is advertised)."""
    bound = [tool for tool in tools if tool.name in names]
    if not bound:
        return None
    for tool in bound:
        tool.meta = {**(tool.meta or {}), "ui": {"resourceUri": VIEW_URI}}
    apps = Apps()
    apps.add_html_resource(
        VIEW_URI,
        view_html(),
        name="result_view",
        title="ComfyUI result",
        description="Progress, images, seed and parameters of a generation, with re-roll/upscale/compare.",
        csp=ResourceCsp(),
        prefers_border=True,
    )
    return apps
