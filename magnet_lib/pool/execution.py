"""Executing calls inside one episode.

An :class:`EpisodeRuntime` holds a fresh, seeded instance of every built-in environment the
episode's tools belong to (and of a user's Python class, or a connection to a user's MCP
server: :mod:`magnet_lib.pool.sources`), and a :class:`SimulatedExecutor` for spec-only tools (imported
JSON), whose outputs follow the tool's response schema, are deterministic for a seed and stay
consistent inside the episode: an identifier returned once is recognised later, and a value
the caller passes in comes back under the same field name. Execution errors are outputs
(``{"error": {...}}``), never exceptions.

In LLM mode a runtime made by :func:`make_runtime` asks the model for the outputs of spec-only
tools instead (the ``simulate_tool_output`` task, cached), shows it the episode's earlier
simulated calls, and falls back to the schema simulator, with a note, when the model's answer
does not follow the response schema.
"""

from __future__ import annotations

import copy
import itertools
import json
import pickle
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from magnet_lib.models import Call, Tool, stable_hash
from magnet_lib.pool.bfcl_source import environments as bfcl_environments
from magnet_lib.pool.envs import ToolEnvironment, builtin_environments, error_output
from magnet_lib.pool.function_pool import validate_arguments
from magnet_lib.pool.simulate import (
    PLACEHOLDER_WORDS,
    SimulatedExecutor,
    model_simulator,
)
from magnet_lib.pool.sources import UnavailableEnvironment
from magnet_lib.pool.sources.config import is_source_ref, read_source
from magnet_lib.pool.sources.mcp_server import McpEnvironment
from magnet_lib.pool.sources.python_class import PythonEnvironment, load_class
from magnet_lib.vocabulary import is_identifier, leaves

#: Asks a model for a spec-only tool's output: ``(tool, arguments, earlier simulated calls,
#: seed) -> (output, None)``, or ``(None, why)`` when no usable output came back. Earlier
#: calls are ``{"name", "arguments", "output", "response"}`` dicts, oldest first.
OutputSimulator = Callable[[Tool, dict[str, Any], list[dict[str, Any]], int], tuple[dict[str, Any] | None, str | None]]


def environment_key(tool: Tool) -> str:
    """Which of an episode's environments runs an executable tool."""
    return f"{tool.category}#{tool.source.rpartition('#')[2]}" if is_source_ref(tool.source) else tool.category


def open_environment(tool: Tool, seed: int, notes: list[str]) -> Any:
    """The environment one episode runs a user source's tool in: a fresh instance of the
    Python class, or a view of the MCP server (``notes`` collects remarks for the episode)."""
    path, _, kind = tool.source.rpartition("#")
    config, rejects = read_source(Path(path), tool.category)
    if config is None:
        return UnavailableEnvironment("; ".join(f"{r.field}: {r.message}" for r in rejects))
    if kind == "python" and config.python is not None:
        loaded = load_class(config)
        if isinstance(loaded, list):
            return UnavailableEnvironment("; ".join(f"{r.field}: {r.message}" for r in loaded))
        return PythonEnvironment(loaded, seed)
    if kind == "mcp" and config.mcp is not None:
        return McpEnvironment(config, seed, notes)
    return UnavailableEnvironment(f"{path} has no [{kind}] table any more")


def schema_user_values(tool: Tool) -> dict[str, list[Any]]:
    """Plausible user-stated values for a spec-only tool's parameters, from their schemas."""
    out: dict[str, list[Any]] = {}
    for name, prop in tool.properties.items():
        if "enum" in prop:
            out[name] = list(prop["enum"])
        elif "examples" in prop and isinstance(prop["examples"], list):
            out[name] = list(prop["examples"])
        elif "default" in prop:
            out[name] = [prop["default"]]
        else:
            kind = prop.get("type")
            if kind == "integer":
                out[name] = [2, 5, 10]
            elif kind == "number":
                out[name] = [12.5, 40.0, 99.9]
            elif kind == "boolean":
                out[name] = [True, False]
            elif kind == "array":
                out[name] = [[f"{name.rstrip('s')} {w}" for w in PLACEHOLDER_WORDS[:2]]]
            elif kind == "object":
                out[name] = [{}]
            elif is_identifier(name):  # ids look like ids: 'HAR-104729', not 'harbour id alpha'
                prefix = name.split("_")[0][:3].upper()
                out[name] = [f"{prefix}-{int(stable_hash([tool.name, name, i]), 16) % 900000 + 100000}" for i in range(3)]
            else:
                out[name] = [f"{name.replace('_', ' ')} {w}" for w in PLACEHOLDER_WORDS[:3]]
    return out


class EpisodeRuntime:
    """The world of one episode: fresh environment instances plus the simulator.

    ``simulate``: where spec-only tools' outputs come from in LLM mode (see
    :func:`make_runtime`); None = the schema simulator alone (offline)."""

    def __init__(self, tools: Sequence[Tool], seed: int, simulate: OutputSimulator | None = None):
        self.seed = seed
        self.simulate = simulate
        #: the spec-only calls answered so far (what the model is shown), oldest first
        self.simulated: list[dict[str, Any]] = []
        #: remarks for the episode's record, e.g. an output the model failed to simulate
        self.notes: list[str] = []
        self.tools = {t.name: t for t in tools}
        registry = builtin_environments()
        #: one environment per source: a built-in's key is its category, a user source's
        #: (``source.toml``'s Python class or MCP server) is ``category#python`` / ``category#mcp``
        self._envs: dict[str, ToolEnvironment] = {}
        for t in tools:
            key = environment_key(t)
            if not t.executable or key in self._envs:
                continue
            if t.category not in registry and t.category.startswith("bfcl_"):  # the opt-in BFCL tool source
                registry = {**registry, **bfcl_environments()}
            if is_source_ref(t.source):
                self._envs[key] = open_environment(t, seed, self.notes)
            elif t.category in registry:
                self._envs[key] = registry[t.category](seed=seed)
            else:
                raise KeyError(f"tool '{t.name}' is marked executable but category '{t.category}' has no environment")
        self.simulator = SimulatedExecutor([t for t in tools if not t.executable], seed)
        #: built-in environments not unpickled yet (a copy's, until something reads them)
        self._frozen: dict[str, bytes] = {}
        #: which state the environments are in: equal tokens, equal states (a copy keeps its
        #: original's until either runs a call; a remembered trial gives its result's token)
        self._token = next(_STATE_TOKENS)
        self._blobs: dict[str, bytes] | None = None  # the built-in environments pickled, for the token
        self._initial_state = self.state()
        self._user_values: dict[str, list[Any]] | None = None  # until the next call changes the state
        self._state_leaves: list[tuple[str | None, Any]] | None = None  # likewise

    @property
    def environments(self) -> dict[str, ToolEnvironment]:
        """The live environments by key. Whoever takes them may change them, so the state
        is taken as new (no copy or remembered trial stands for it any more)."""
        self._changed()
        return self._live()

    def _live(self) -> dict[str, ToolEnvironment]:
        if self._frozen:
            for key, blob in self._frozen.items():
                self._envs[key] = pickle.loads(blob)
            self._frozen = {}
        return self._envs

    def _changed(self) -> None:
        self._token = next(_STATE_TOKENS)
        self._blobs = None
        self._user_values = self._state_leaves = None

    def execute(self, call: Call) -> dict[str, Any]:
        """Run a call; an unknown or not-offered function is an error output."""
        tool = self.tools.get(call.name)
        if tool is None:
            return error_output("unknown_function", f"function '{call.name}' is not available")
        if tool.executable:
            if is_source_ref(tool.source):  # user code: the schema is checked here, before it runs
                self._changed()
                problems = validate_arguments(tool, call.arguments)
                if problems:
                    return error_output("invalid_arguments", "; ".join(problems))
                return self._live()[environment_key(tool)].call(call.name, call.arguments)
            return self._run_builtin(call, environment_key(tool))
        self._changed()  # the simulator remembers what it was given
        if self.simulate is None or validate_arguments(tool, call.arguments):
            return self.simulator.call(call.name, call.arguments)  # offline, or a call that cannot run
        arguments = dict(call.arguments)
        output, why = self.simulate(tool, arguments, list(self.simulated), self.seed)
        if output is None:
            self.notes.append(f"{call.name}: no usable simulated output from the model ({why}); the schema simulator answered")
            output = self.simulator.call(call.name, arguments)
        else:
            self.simulator.record(call.name, arguments, output)
        self.simulated.append({"name": call.name, "arguments": arguments, "output": output, "response": tool.response})
        return output

    def accepts(self, name: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """Whether the environment of the executable tool ``name`` would take ``value`` for
        ``param`` now (its :meth:`~magnet_lib.pool.envs.base.ToolEnvironment.accepts`);
        True for spec-only tools and environments that do not say."""
        tool = self.tools.get(name)
        env = self._live().get(environment_key(tool)) if tool is not None and tool.executable else None
        accepts = getattr(env, "accepts", None)
        return True if accepts is None else bool(accepts(name, param, value, chosen))

    def offline_copy(self) -> EpisodeRuntime:
        """A copy whose spec-only tools use the schema simulator alone: for probing a plan
        without spending model calls (a planner makes thousands a run)."""
        return self._copy(None)

    def snapshot(self) -> EpisodeRuntime:
        """A copy to go back to (a turn retried from the state before it); spec-only tools
        keep their model simulator (shared, as its runner and cache are)."""
        return self._copy(self.simulate)

    def _copy(self, simulate: OutputSimulator | None) -> EpisodeRuntime:
        """What a call can change is copied: the environments (a built-in one by a pickle round
        trip, several times faster than ``deepcopy`` for their nested models; a user's source
        by ``deepcopy``, which its class may define), the simulator and the call records.
        What no call changes is shared: the tool specs, the initial state and the user values
        cached for the current state (replaced, never changed in place, by the next call)."""
        blobs = self._pickled()
        clone = copy.copy(self)
        clone.simulate = simulate
        clone.simulated = list(self.simulated)
        clone.notes = list(self.notes)
        clone._frozen = dict(blobs)  # unpickled when first read; a remembered trial never needs to
        clone._envs = {key: copy.deepcopy(env) for key, env in self._envs.items() if key not in blobs}
        if self.simulator.tools:  # without spec-only tools nothing ever changes it
            clone.simulator = copy.deepcopy(self.simulator, {id(t): t for t in self.tools.values()})
        return clone

    def _pickled(self) -> dict[str, bytes]:
        """The built-in environments (plain data) pickled, once per state; user sources are
        left out (copied by ``deepcopy``, which their class may define)."""
        if self._blobs is None:
            blobs = dict(self._frozen)
            for key, env in self._envs.items():
                if key not in blobs and type(env).__module__.startswith(_BUILTIN_MODULES):
                    blobs[key] = pickle.dumps(env, pickle.HIGHEST_PROTOCOL)
            self._blobs = blobs
        return self._blobs

    def _run_builtin(self, call: Call, key: str) -> dict[str, Any]:
        """A built-in environment's call. The same call on the same state does the same thing
        (the environments are plain seeded data), so once the state is pickled (it has been
        copied: a planner tries most calls many times over, each on a copy of one world)
        the call is looked up first, and what it did is remembered."""
        before = self._blobs
        if before is None or key not in before:
            self._changed()
            return self._live()[key].call(call.name, call.arguments)
        memo_key = (self._token, call.name, _canonical(call.arguments))
        remembered = _TRIALS.get(memo_key)
        if remembered is None:
            output = self._live()[key].call(call.name, call.arguments)
            blob = pickle.dumps(self._envs[key], pickle.HIGHEST_PROTOCOL)
            # a call that changed nothing (a read that drew no random number) keeps the state, its
            # token and what is known of it: the calls after it are looked up as on the state
            # before it (most trial calls are reads)
            if blob != before[key]:
                self._changed()
            _TRIALS.put(memo_key, (pickle.dumps(output, pickle.HIGHEST_PROTOCOL), blob, self._token))
        else:
            packed, blob, token = remembered
            output = pickle.loads(packed)
            if token == self._token:  # a read, remembered: nothing to replace
                return output
            self._frozen[key] = blob  # the environment as the call left it, unpickled when read
            self._envs.pop(key, None)
            self._changed()
            self._token = token
        self._blobs = {**before, key: blob}  # the call changed its own environment only
        return output

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {cat: env.state() for cat, env in sorted(self._live().items())}
        if self.simulator.tools:
            state["_simulated"] = {"memory": {k: list(v) for k, v in self.simulator.memory.items()}}
        return state

    @property
    def initial_state(self) -> dict[str, Any]:
        return self._initial_state

    def state_leaves(self) -> list[tuple[str | None, Any]]:
        """(field name, value) of every scalar of the state and every list of scalars as a
        whole, in document order (:func:`~magnet_lib.vocabulary.leaves`): computed once per
        state, as a plan looks through it for many parameters."""
        if self._state_leaves is None:
            self._state_leaves = list(leaves(self.state(), whole_lists=True))
        return self._state_leaves

    def user_values(self) -> dict[str, list[Any]]:
        """Values a user could state for parameters: from the environments' state, and from
        the schemas of spec-only tools. Computed once per state (a plan asks for them for
        every parameter); each call gets its own lists."""
        if self._user_values is None:
            self._user_values = self._compute_user_values()
        return {name: list(options) for name, options in self._user_values.items()}

    def _compute_user_values(self) -> dict[str, list[Any]]:
        values: dict[str, list[Any]] = {}
        for t in self.simulator.tools.values():
            for name, options in schema_user_values(t).items():
                values.setdefault(name, options)
        for env in self._live().values():
            for name, options in env.user_values().items():
                values[name] = list(options)
            # a user may know the ids of what already exists in their world (their account,
            # an earlier booking), so a walk that starts at a function taking an id is
            # translatable; earlier outputs still come first in forth-translation
            for name, found in _state_identifiers(env.state()).items():
                values.setdefault(name, found)
        return values


#: the modules of the built-in environments: plain data, picklable, deterministic for a state
_BUILTIN_MODULES = "magnet_lib.pool.envs."
_STATE_TOKENS = itertools.count()


def _canonical(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True, default=repr)


class _TrialMemo:
    """What calls did to states of built-in environments: (state token, name, arguments) ->
    (the output pickled, the environment after the call pickled, the token of that state).
    Least recently used entries go once the pickles pass ``budget`` bytes."""

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self.entries: OrderedDict[tuple[int, str, str], tuple[bytes, bytes, int]] = OrderedDict()

    def get(self, key: tuple[int, str, str]) -> tuple[bytes, bytes, int] | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[int, str, str], value: tuple[bytes, bytes, int]) -> None:
        self.entries[key] = value
        self.size += len(value[0]) + len(value[1])
        while self.size > self.budget and len(self.entries) > 1:
            _, (output, blob, _) = self.entries.popitem(last=False)
            self.size -= len(output) + len(blob)


_TRIALS = _TrialMemo(budget=64 << 20)


def make_runtime(tools: Sequence[Tool], seed: int, runner: Any = None) -> EpisodeRuntime:
    """The runtime of one episode. With a runner whose ``simulate_tool_output`` task has a
    model (LLM mode), spec-only tools get their outputs from that model through the runner
    (cached, so a rerun makes no request); otherwise from the schema simulator."""
    return EpisodeRuntime(tools, seed, model_simulator(runner))


def _state_identifiers(state: Any, key: str | None = None, found: dict[str, list[Any]] | None = None) -> dict[str, list[Any]]:
    """Identifier-like fields (``*_id``, ``*_code``, ...) with their values in a state."""
    found = {} if found is None else found
    if isinstance(state, dict):
        for k, v in state.items():
            _state_identifiers(v, str(k), found)
    elif isinstance(state, list):
        for v in state:
            _state_identifiers(v, key, found)
    elif key is not None and isinstance(state, str) and is_identifier(key):
        seen = found.setdefault(key, [])
        if state not in seen and len(seen) < 20:
            seen.append(state)
    return found
