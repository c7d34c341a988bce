"""The tools the MCP server starts with, built with the SDK's public ``Tool`` class.

Function tools come from :meth:`Toolset.tool` (a decorator, like ``MCPServer.tool``); spec tools from
:meth:`Toolset.add_spec_tool`, whose input schema is the compiled spec's own. Every advertised schema
is leaned by :mod:`.lean` (``tools/list`` costs the AI's context: issue 25). The list is handed to
``MCPServer(tools=...)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import ConfigDict

from . import lean

F = TypeVar("F", bound=Callable[..., Any])
SpecHandler = Callable[[dict[str, Any], Context], Awaitable[CallToolResult]]
ErrorMap = Callable[[BaseException], Exception | None]


class RawArguments(ArgModelBase):
    """Hands a spec tool its raw arguments: the tool validates them with its own model (better errors)."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.__pydantic_extra__ or {})}


class Toolset:
    """An ordered collection of tools for one MCP server."""

    def __init__(self, errors: ErrorMap | None = None) -> None:
        self.tools: list[Tool] = []
        self.errors = errors

    def _add(self, tool: Tool) -> None:
        if self.errors is not None:
            tool.fn = _mapped(tool.fn, self.errors)
        self.tools.append(tool)

    def tool(
        self, *, annotations: ToolAnnotations | None = None, title: str | None = None
    ) -> Callable[[F], F]:
        """Decorator: add ``fn`` as a tool named after it, described by its docstring."""

        def add(fn: F) -> F:
            tool = Tool.from_function(fn, title=title, annotations=annotations)
            tool.parameters = lean.input_schema(tool.parameters)
            tool.description = lean.text(tool.description) or ""
            tool.annotations = lean.hints(tool.annotations)
            if tool.fn_metadata.output_schema is not None:
                tool.fn_metadata.output_schema = lean.output_schema(tool.fn_metadata.output_schema)
            self._add(tool)
            return fn

        return add

    def add_spec_tool(
        self,
        name: str,
        handler: SpecHandler,
        *,
        schema: dict[str, Any],
        description: str,
        title: str | None = None,
        annotations: ToolAnnotations | None = None,
    ) -> None:
        """Add a tool whose arguments are exactly ``schema`` and reach ``handler`` unvalidated."""
        self._add(
            Tool(
                fn=handler,
                name=name,
                title=title,
                description=description,
                parameters=lean.input_schema(schema),
                fn_metadata=FuncMetadata(arg_model=RawArguments),
                is_async=True,
                context_kwarg="ctx",
                annotations=lean.hints(annotations),
            )
        )


def _mapped(fn: Callable[..., Any], errors: ErrorMap) -> Callable[..., Any]:
    """``fn`` raising what ``errors`` maps instead of what it raised."""

    def mapped(exc: Exception) -> Exception:
        other = errors(exc)
        return exc if other is None else other

    if not inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                other = mapped(exc)
                if other is exc:
                    raise
                raise other from None

        return call

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            other = mapped(exc)
            if other is exc:
                raise
            raise other from None

    return run


def drop_titles(schema: object) -> None:
    """Remove the ``title`` pydantic derives from every schema name: pure repetition for an AI reader.

    A ``properties`` map is a map of names, not a schema: a property *called* ``title`` stays.
    """
    if isinstance(schema, dict):
        schema.pop("title", None)
        for key, value in schema.items():
            if key in ("properties", "$defs") and isinstance(value, dict):
                for sub in value.values():
                    drop_titles(sub)
            else:
                drop_titles(value)
    elif isinstance(schema, list):
        for item in schema:
            drop_titles(item)
