"""MCP servers as executable categories (``[mcp]`` in ``source.toml``), through the official
``mcp`` SDK's client.

- **Tools** come from ``tools/list``: ``inputSchema`` is the parameters, ``outputSchema`` (where
  the server gives one) the response. They pass the pool's validation like any spec.
- **Calls** go through ``tools/call`` wherever a call executes (translation, distillation,
  student sampling, evaluation: all of them run calls through
  :class:`~magnet_lib.pool.execution.EpisodeRuntime`). The output is the result's
  ``structuredContent``, else its text parsed as JSON (``{"result": text}`` when it is not an
  object); a result with ``isError`` is ``{"error": {"code": "tool_error", "message": text}}``.
- **Lifetime**: a stdio server (``command``) is started by the run on first use, in the
  category folder, with ``start_timeout`` to start and list its tools, ``call_timeout`` per
  call, and stopped when the run ends (:func:`close_servers`, also at exit). ``python`` as the
  command's first word is the interpreter running Magnet. The server sees only a minimal
  environment (PATH, HOME, ...) plus the variables ``env`` names: keys come from the
  environment, never from the file. A ``url`` server is already running; ``headers`` values
  name variables as ``${VAR}``.
- **Failures**: a server that does not start gives reject rows (with its exit and the end of
  its stderr); one that dies mid-run makes every later call of its category an error output
  ``tool_server_unavailable`` with the reason, so those episodes are rejected with it while
  other categories go on.
- **Isolation between episodes is the server's**. With ``reset_tool`` the tool is called at the
  start of every episode (with ``{"seed": <episode seed>}`` when it takes a ``seed``); the
  runtime remembers each episode's calls, and when another episode (episodes advance
  interleaved), a plan probe or a retried turn used the server in between, it resets the
  server and replays the episode's calls before the next one, so a deterministic server
  behaves as if each episode had it alone. Without ``reset_tool`` episodes share one live
  server and its state.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import os
import sys
import tempfile
import threading
from typing import Any

from magnet_lib.models import ToolReject
from magnet_lib.pool.envs.base import clean_schema, error_output
from magnet_lib.pool.sources.config import SourceConfig, expand_vars, source_reject

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    """The event loop (in a daemon thread) every MCP connection of this process lives on."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="magnet-mcp", daemon=True).start()
            _LOOP = loop
    return _LOOP


class ServerUnavailable(Exception):
    pass


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text").strip()


def result_output(result: Any) -> dict[str, Any]:
    """A ``CallToolResult`` as a tool output."""
    if result.is_error:
        return error_output("tool_error", _text(result) or "the tool reported an error")
    if isinstance(result.structured_content, dict):
        return result.structured_content
    text = _text(result)
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        value = text
    return value if isinstance(value, dict) else {"result": value}


class McpServer:
    """One connection to a server (one stdio process), shared by the episodes of a run."""

    def __init__(self, config: SourceConfig):
        self.config = config
        self.section = config.mcp
        self.version = config.version()
        self.dead: str | None = None
        self.tools: list[Any] = []
        #: the name the server gives itself (the default tool_class)
        self.name: str | None = None
        #: the calls the server has seen since its last reset (see the module docstring)
        self.applied: list[tuple[str, dict[str, Any]]] | None = None
        #: one episode at a time resyncs and calls (episodes may run in several threads)
        self.lock = threading.RLock()
        self._client: Any = None
        self._stop: asyncio.Event | None = None
        self._main: concurrent.futures.Future | None = None
        #: the server's stderr (the end of it goes into a reject's reason); removed at exit
        self._errlog = tempfile.TemporaryFile(mode="w+", encoding="utf-8", prefix="magnet-mcp-")  # noqa: SIM115

    @property
    def label(self) -> str:
        s = self.section
        return " ".join(s.command) if s.command else str(s.url)

    def _target(self) -> Any:
        from mcp.client.stdio import StdioServerParameters

        s = self.section
        if s.url is not None:
            return s.url
        command = [sys.executable if s.command[0] in ("python", "python3") else s.command[0], *s.command[1:]]
        env = {name: os.environ[name] for name in s.env if name in os.environ}
        return StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(self.config.folder))

    def _transport(self) -> Any:
        """What the SDK's ``Client`` connects to: a stdio transport keeping the server's
        stderr (for a reject's reason), or the URL (with the headers' variables expanded)."""
        s = self.section
        if s.command is not None:
            from mcp.client.stdio import stdio_client

            return stdio_client(self._target(), errlog=self._errlog)
        url = expand_vars(s.url, dict(os.environ))
        if not s.headers:
            return url
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        headers = {k: expand_vars(v, dict(os.environ)) for k, v in s.headers.items()}
        return streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))

    async def _serve(self, ready: concurrent.futures.Future) -> None:
        from mcp import Client

        self._stop = asyncio.Event()
        try:
            async with Client(self._transport(), read_timeout_seconds=self.section.call_timeout) as client:
                listing = await client.list_tools()
                tools = list(listing.tools)
                while listing.next_cursor:
                    listing = await client.list_tools(cursor=listing.next_cursor)
                    tools.extend(listing.tools)
                self._client = client
                info = client.server_info
                self.name = info.name if info is not None and info.name else None
                ready.set_result(tools)
                await self._stop.wait()
        except BaseException as exc:  # the SDK raises ExceptionGroups, OSError, MCPError ...
            reason = _reason(exc)
            if not ready.done():
                ready.set_exception(ServerUnavailable(reason))
            else:
                self.dead = self.dead or f"the connection ended: {reason}"
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    def start(self) -> None:
        """Start (stdio) or connect (url) and list the tools; ServerUnavailable saying why."""
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(ready), _loop())
        try:
            self.tools = ready.result(timeout=self.section.start_timeout)
        except concurrent.futures.TimeoutError:
            self._main.cancel()  # the SDK's stdio shutdown then stops the process (bounded waits)
            self.dead = "did not start"
            why = f"did not start and list its tools within {self.section.start_timeout:g} s"
        except ServerUnavailable as exc:
            self.close()
            why = str(exc)
        else:
            return
        raise ServerUnavailable(f"{why}{self._stderr()}")

    def _stderr(self) -> str:
        try:
            self._errlog.flush()
            self._errlog.seek(0)
            tail = self._errlog.read()[-600:].strip()
            self._errlog.seek(0, 2)
        except (OSError, ValueError):
            return ""
        return f"; its stderr ends: {tail}" if tail else ""

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """One ``tools/call``; never raises (a failure is an error output)."""
        if self.dead or self._client is None:
            return error_output("tool_server_unavailable", f"MCP server '{self.label}' is not running: {self.dead or 'not started'}")
        from mcp.shared.exceptions import MCPError

        timeout = self.section.call_timeout
        future = asyncio.run_coroutine_threadsafe(self._client.call_tool(name, arguments, read_timeout_seconds=timeout), _loop())
        try:
            return result_output(future.result(timeout=timeout + 5))
        except MCPError as exc:
            from mcp_types import CONNECTION_CLOSED

            if exc.code == CONNECTION_CLOSED or (self._main is not None and self._main.done()):
                self.dead = f"the connection ended: {exc}"
                return error_output("tool_server_unavailable", f"MCP server '{self.label}': {self.dead}{self._stderr()}")
            return error_output("mcp_error", f"{name}: {exc}")
        except (concurrent.futures.TimeoutError, TimeoutError):
            future.cancel()
            return error_output("timeout", f"{name} did not answer within {timeout:g} s")
        except Exception as exc:  # the connection is gone (the process died, the stream closed)
            self.dead = f"{name} failed: {_reason(exc)}"
            return error_output("tool_server_unavailable", f"MCP server '{self.label}': {self.dead}{self._stderr()}")

    def close(self) -> None:
        """Stop the connection (and a stdio server's process), waiting a bounded time."""
        loop = _LOOP
        if self._main is not None and loop is not None and not self._main.done():
            if self._stop is not None:
                loop.call_soon_threadsafe(self._stop.set)
            try:
                self._main.result(timeout=15)
            except BaseException:
                self._main.cancel()
        self.dead = self.dead or "stopped"


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_SERVERS: dict[str, McpServer] = {}
_FAILED: dict[tuple[str, str], str] = {}
_SERVERS_LOCK = threading.Lock()


def server_for(config: SourceConfig) -> McpServer:
    """The running server of a ``source.toml`` (started on first use; restarted when the
    file or the files it names changed). ServerUnavailable when it does not start; a failed
    start is not retried for the same data version."""
    key, version = str(config.path), config.version()
    with _SERVERS_LOCK:
        server = _SERVERS.get(key)
        if server is not None and server.version == version:
            return server
        if server is not None:
            server.close()
            _SERVERS.pop(key)
        if (key, version) in _FAILED:
            raise ServerUnavailable(_FAILED[(key, version)])
        server = McpServer(config)
        try:
            server.start()
        except ServerUnavailable as exc:
            _FAILED[(key, version)] = str(exc)
            raise
        _SERVERS[key] = server
        return server


def close_servers() -> None:
    """Stop every server this process started (the end of a run)."""
    with _SERVERS_LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
        _FAILED.clear()
    for server in servers:
        server.close()


atexit.register(close_servers)


def source_ref(config: SourceConfig) -> str:
    return f"{config.path}#mcp"


def server_entries(config: SourceConfig) -> tuple[list[dict[str, Any]], list[ToolReject]]:
    """The server's tools in the pool's entry form (name, description, parameters, response,
    tool_class), or the rejects saying why there are none (the pool validates the entries)."""
    label = "<mcp server>"
    try:
        import mcp  # noqa: F401
    except ImportError:
        return [], [source_reject(config.path, config.category, "mcp", "the 'mcp' package is not installed", tool=label)]
    fld = "mcp.command" if config.mcp.command else "mcp.url"
    try:
        server = server_for(config)
    except (ServerUnavailable, KeyError) as exc:
        return [], [source_reject(config.path, config.category, fld, f"server '{_label(config)}' is unavailable: {exc}", tool=label)]
    rejects: list[ToolReject] = []
    hidden = {*config.mcp.exclude, *([config.mcp.reset_tool] if config.mcp.reset_tool else [])}
    if config.mcp.reset_tool and config.mcp.reset_tool not in {t.name for t in server.tools}:
        rejects.append(
            source_reject(config.path, config.category, "mcp.reset_tool", f"the server has no tool '{config.mcp.reset_tool}'", label)
        )
    tool_class = config.mcp.tool_class or server.name or config.category
    entries = []
    for listed in server.tools:
        if listed.name in hidden:
            continue
        description, parameters = _split_docstring(listed.description or listed.title or "", _plain_schema(listed.input_schema, True))
        entries.append(
            {"name": listed.name, "description": description, "parameters": parameters,
             "response": _plain_schema(listed.output_schema, False), "tool_class": tool_class}
        )  # fmt: skip
    return entries, rejects


def _label(config: SourceConfig) -> str:
    return " ".join(config.mcp.command) if config.mcp.command else str(config.mcp.url)


def _split_docstring(description: str, parameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Servers made from Python functions (FastMCP/MCPServer) send the whole docstring as
    the description: its ``Args:`` go to the parameters that have no description."""
    import docstring_parser

    try:
        doc = docstring_parser.parse(description)
    except Exception:
        return description, parameters
    if not doc.params:
        return description, parameters
    properties = parameters.get("properties")
    if isinstance(properties, dict):
        for param in doc.params:
            prop = properties.get(param.arg_name)
            if isinstance(prop, dict) and not prop.get("description") and param.description:
                prop["description"] = param.description
    text = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
    return text or description, parameters


def _plain_schema(schema: dict[str, Any] | None, collapse_optional: bool) -> dict[str, Any]:
    """A listed schema as the pool keeps schemas: ``$ref``s inlined, no titles (servers made
    from Python functions add them everywhere), ``Optional[X]`` parameters as ``X``."""
    if not schema:
        return {}
    try:
        return clean_schema(dict(schema), collapse_optional=collapse_optional)
    except (KeyError, TypeError, AttributeError):  # a $ref the schema does not define: the pool's validation says so
        return dict(schema)


class McpEnvironment:
    """One episode's view of a server: its calls so far, replayed after a reset when the
    server served someone else in between (see the module docstring)."""

    def __init__(self, config: SourceConfig, seed: int, notes: list[str]):
        self.config = config
        self.seed = seed
        self.notes = notes
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.server: McpServer | None = None
        self.unavailable: str | None = None
        try:
            self.server = server_for(config)
        except (ServerUnavailable, KeyError) as exc:
            self.unavailable = f"MCP server '{_label(config)}' is unavailable: {exc}"
            return
        with self.server.lock:
            self._reset()

    def _reset(self) -> bool:
        reset = self.config.mcp.reset_tool
        if reset is None or self.server is None:
            return False
        listed = next((t for t in self.server.tools if t.name == reset), None)
        takes_seed = listed is not None and "seed" in (listed.input_schema or {}).get("properties", {})
        output = self.server.call(reset, {"seed": self.seed} if takes_seed else {})
        if "error" in output and len(output) == 1:
            self.notes.append(f"{reset}: the reset failed: {output['error'].get('message')}")
            return False
        self.server.applied = []
        return True

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.server is None:
            return error_output("tool_server_unavailable", self.unavailable or "no server")
        arguments = dict(arguments or {})
        with self.server.lock:
            resync = self.server.applied != self.log and self.config.mcp.reset_tool and not self.server.dead
            if resync and self._reset():
                for earlier_name, earlier_arguments in self.log:
                    self.server.call(earlier_name, earlier_arguments)
                self.server.applied = list(self.log)
            output = self.server.call(name, arguments)
            self.log.append((name, arguments))
            self.server.applied = list(self.log)
        return output

    def state(self) -> dict[str, Any]:
        return {}  # the server's state is its own

    def user_values(self) -> dict[str, list[Any]]:
        return {}

    def __deepcopy__(self, memo: dict) -> McpEnvironment:
        new = object.__new__(McpEnvironment)
        new.config, new.seed, new.server, new.unavailable = self.config, self.seed, self.server, self.unavailable
        new.notes = memo.get(id(self.notes), self.notes)
        new.log = [(n, dict(a)) for n, a in self.log]
        return new
