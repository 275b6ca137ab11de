"""Users' own executable tools: a category folder's ``source.toml`` names a Python class
(:mod:`.python_class`) or an MCP server (:mod:`.mcp_server`) that runs them.

The pool (:func:`magnet_lib.pool.function_pool.load_source_file`) validates their tools like
any spec; an episode's runtime (:class:`magnet_lib.pool.execution.EpisodeRuntime`) opens one
environment per source: a fresh class instance, or its view of the running server. The
``Tool.source`` of such a tool is ``<path of source.toml>#python`` or ``#mcp``.
"""

from __future__ import annotations

from typing import Any

from magnet_lib.pool.envs.base import error_output


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
