"""Users' own executable tools: a category folder's ``source.toml`` names a Python class
(:mod:`.python_class`) or an MCP server (:mod:`.mcp_server`) that runs them.

The pool reads their tools with :func:`source_tools`; an episode's runtime opens one
environment per source with :func:`open_environment` (a fresh class instance, or a
connection to the running server). A ``Tool.source`` of such a tool is
``<path of source.toml>#python`` or ``#mcp``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magnet_lib.models import Tool, ToolReject
from magnet_lib.pool.envs.base import error_output
from magnet_lib.pool.sources.config import SOURCE_FILE, SourceConfig, read_source

__all__ = ["SOURCE_FILE", "SourceConfig", "is_source_ref", "open_environment", "read_source", "source_tools", "source_version"]


def is_source_ref(source: str) -> bool:
    return source.endswith(("#python", "#mcp"))


def source_version(path: Path) -> str:
    """The data version part of a ``source.toml``: its bytes and those of the files it names
    (a file that does not parse still has a version: its bytes)."""
    config, _ = read_source(path, "")
    if config is not None:
        return config.version()
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def source_tools(path: Path, category: str) -> tuple[list[Tool], list[ToolReject]]:
    """The tools of a ``source.toml`` and the rejects (a broken file, a class that does not
    load, a server that does not start: the rejects say which and why)."""
    config, rejects = read_source(path, category)
    if config is None:
        return [], rejects
    tools: list[Tool] = []
    if config.python is not None:
        from magnet_lib.pool.sources.python_class import load_class

        loaded = load_class(config)
        if isinstance(loaded, list):
            rejects.extend(loaded)
        else:
            tools.extend(loaded.tools)
            rejects.extend(loaded.rejects)
    if config.mcp is not None:
        from magnet_lib.pool.sources.mcp_server import server_tools

        found, problems = server_tools(config)
        tools.extend(found)
        rejects.extend(problems)
    return tools, rejects


class UnavailableEnvironment:
    """Stands in for a source that cannot run any more (its file changed or broke after the
    pool was read): every call is an error output saying why."""

    def __init__(self, reason: str):
        self.reason = reason

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return error_output("environment_unavailable", self.reason)

    def state(self) -> dict[str, Any]:
        return {}

    def user_values(self) -> dict[str, list[Any]]:
        return {}


def open_environment(tool: Tool, seed: int, notes: list[str]) -> Any:
    """The environment one episode runs ``tool``'s source in (``notes`` collects remarks)."""
    path, _, kind = tool.source.rpartition("#")
    config, rejects = read_source(Path(path), tool.category)
    if config is None:
        return UnavailableEnvironment("; ".join(f"{r.field}: {r.message}" for r in rejects))
    if kind == "python" and config.python is not None:
        from magnet_lib.pool.sources.python_class import PythonEnvironment, load_class

        loaded = load_class(config)
        if isinstance(loaded, list):
            return UnavailableEnvironment("; ".join(f"{r.field}: {r.message}" for r in loaded))
        return PythonEnvironment(loaded, seed)
    if kind == "mcp" and config.mcp is not None:
        from magnet_lib.pool.sources.mcp_server import McpEnvironment

        return McpEnvironment(config, seed, notes)
    return UnavailableEnvironment(f"{path} has no [{kind}] table any more")
