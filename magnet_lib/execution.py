"""Executing calls inside one episode.

An :class:`EpisodeRuntime` holds a fresh, seeded instance of every built-in environment the
episode's tools belong to, and a :class:`SimulatedExecutor` for spec-only tools (imported
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
import random
import re
from typing import Any, Callable, Sequence

from magnet_lib.envs import ToolEnvironment, builtin_environments, error_output
from magnet_lib.models import Call, Tool, stable_hash
from magnet_lib.pool import validate_arguments

_ID_FIELD = re.compile(r"(^id$|_id$|Id$|_token$|_key$|_code$|_number$)")
_WORDS = ["alpha", "bright", "cedar", "delta", "ember", "fjord", "granite", "harbor", "iris", "juniper", "kestrel", "lumen"]


def is_identifier_field(name: str) -> bool:
    return bool(_ID_FIELD.search(name))


class SimulatedExecutor:
    """Outputs for spec-only tools, generated from their response schema."""

    def __init__(self, tools: Sequence[Tool], seed: int):
        self.tools = {t.name: t for t in tools}
        self.seed = seed
        self.calls = 0
        #: field name -> values produced or received so far in this episode
        self.memory: dict[str, list[Any]] = {}

    def _remember(self, name: str, value: Any) -> None:
        if isinstance(value, (str, int, float, bool)):
            seen = self.memory.setdefault(name, [])
            if value not in seen:
                seen.append(value)

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = self.tools.get(name)
        if tool is None:
            return error_output("unknown_function", f"no function '{name}'")
        problems = validate_arguments(tool, arguments)
        if problems:
            return error_output("invalid_arguments", "; ".join(problems))
        self.calls += 1
        rng = random.Random(f"{self.seed}:{name}:{stable_hash(arguments)}:{self.calls}")
        for key, value in arguments.items():
            self._remember(key, value)
        schema = tool.response or {}
        if schema.get("type", "object") != "object" or not schema.get("properties"):
            value = self._value("result", schema, rng, arguments) if schema else f"{name} completed"
            return {"result": value}
        return self._object(schema, rng, arguments)

    def _object(self, schema: dict[str, Any], rng: random.Random, arguments: dict[str, Any]) -> dict[str, Any]:
        return {name: self._value(name, sub, rng, arguments) for name, sub in schema.get("properties", {}).items()}

    def _value(self, name: str, schema: dict[str, Any], rng: random.Random, arguments: dict[str, Any]) -> Any:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if "const" in schema:
            return schema["const"]
        if name in arguments and kind not in ("object", "array"):
            return arguments[name]  # consistent: the entity asked about comes back
        if "enum" in schema:
            return rng.choice(schema["enum"])
        if kind == "object":
            return self._object(schema, rng, arguments)
        if kind == "array":
            items = schema.get("items", {"type": "string"})
            return [self._value(name.rstrip("s") or name, items, rng, {}) for _ in range(rng.randint(1, 3))]
        if kind == "boolean":
            return rng.random() < 0.85  # checks mostly pass, so gated actions can follow
        if kind == "integer":
            value = rng.randint(int(schema.get("minimum", 1)), int(schema.get("maximum", 100)))
        elif kind == "number":
            value = round(rng.uniform(float(schema.get("minimum", 1)), float(schema.get("maximum", 1000))), 2)
        elif is_identifier_field(name):
            known = self.memory.get(name)
            value = known[-1] if known and rng.random() < 0.5 else f"{name.split('_')[0][:3].upper()}-{rng.randrange(100000, 999999)}"
        elif schema.get("format") == "date":
            value = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        elif schema.get("format") == "date-time":
            value = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        else:
            value = f"{name.replace('_', ' ')} {rng.choice(_WORDS)}"
        self._remember(name, value)
        return value

    # ------------------------------------------------------------------ calls answered elsewhere
    def record(self, name: str, arguments: dict[str, Any], output: dict[str, Any], response: dict[str, Any] | None = None) -> None:
        """Count a call this simulator did not answer (the model did, or it is an earlier call
        being replayed) and remember its values exactly as :meth:`call` would have, so later
        outputs stay consistent with it. ``response``: the called tool's response schema
        (default: the known tool's); without one every scalar of the output is remembered."""
        self.calls += 1
        for key, value in arguments.items():
            self._remember(key, value)
        if set(output) == {"error"}:
            return
        schema = response if response is not None else (self.tools[name].response if name in self.tools else None)
        if schema is None:
            self._recall_leaves(output)
        elif schema.get("type", "object") != "object" or not schema.get("properties"):
            if schema:
                self._recall("result", schema, output.get("result"), arguments)
        else:
            for key, sub in schema["properties"].items():
                if key in output:
                    self._recall(key, sub, output[key], arguments)

    def _recall(self, name: str, schema: dict[str, Any], value: Any, arguments: dict[str, Any]) -> None:
        """Mirror of :meth:`_value`: remember what it would have remembered for ``value``."""
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if "const" in schema or "enum" in schema or kind == "boolean":
            return
        if name in arguments and kind not in ("object", "array"):
            return
        if kind == "object":
            if isinstance(value, dict):
                for key, sub in schema.get("properties", {}).items():
                    if key in value:
                        self._recall(key, sub, value[key], arguments)
        elif kind == "array":
            for item in value if isinstance(value, list) else []:
                self._recall(name.rstrip("s") or name, schema.get("items", {"type": "string"}), item, {})
        else:
            self._remember(name, value)

    def _recall_leaves(self, value: Any, field: str = "") -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                self._recall_leaves(sub, key)
        elif isinstance(value, list):
            for sub in value:
                self._recall_leaves(sub, field.rstrip("s") or field)
        elif field:
            self._remember(field, value)


#: Asks a model for a spec-only tool's output: ``(tool, arguments, earlier simulated calls,
#: seed) -> (output, None)``, or ``(None, why)`` when no usable output came back. Earlier
#: calls are ``{"name", "arguments", "output", "response"}`` dicts, oldest first.
OutputSimulator = Callable[[Tool, dict[str, Any], list[dict[str, Any]], int], tuple[dict[str, Any] | None, str | None]]


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
                out[name] = [[f"{name.rstrip('s')} {w}" for w in _WORDS[:2]]]
            elif kind == "object":
                out[name] = [{}]
            elif is_identifier_field(name):  # ids look like ids: 'HAR-104729', not 'harbour id alpha'
                prefix = name.split("_")[0][:3].upper()
                out[name] = [f"{prefix}-{int(stable_hash([tool.name, name, i]), 16) % 900000 + 100000}" for i in range(3)]
            else:
                out[name] = [f"{name.replace('_', ' ')} {w}" for w in _WORDS[:3]]
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
        self.environments: dict[str, ToolEnvironment] = {}
        for t in tools:
            if t.executable and t.category not in self.environments:
                if t.category not in registry:
                    raise KeyError(f"tool '{t.name}' is marked executable but category '{t.category}' has no environment")
                self.environments[t.category] = registry[t.category](seed=seed)
        self.simulator = SimulatedExecutor([t for t in tools if not t.executable], seed)
        self._initial_state = self.state()

    def execute(self, call: Call) -> dict[str, Any]:
        """Run a call; an unknown or not-offered function is an error output."""
        tool = self.tools.get(call.name)
        if tool is None:
            return error_output("unknown_function", f"function '{call.name}' is not available")
        if tool.executable:
            return self.environments[tool.category].call(call.name, call.arguments)
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

    def offline_copy(self) -> "EpisodeRuntime":
        """A deep copy whose spec-only tools use the schema simulator alone: for probing a
        plan without spending model calls."""
        simulate, self.simulate = self.simulate, None
        try:
            return copy.deepcopy(self)
        finally:
            self.simulate = simulate

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {cat: env.state() for cat, env in sorted(self.environments.items())}
        if self.simulator.tools:
            state["_simulated"] = {"memory": {k: list(v) for k, v in self.simulator.memory.items()}}
        return state

    @property
    def initial_state(self) -> dict[str, Any]:
        return self._initial_state

    def user_values(self) -> dict[str, list[Any]]:
        """Values a user could state for parameters: from the environments' state, and from
        the schemas of spec-only tools."""
        values: dict[str, list[Any]] = {}
        for t in self.simulator.tools.values():
            for name, options in schema_user_values(t).items():
                values.setdefault(name, options)
        for env in self.environments.values():
            for name, options in env.user_values().items():
                values[name] = list(options)
            # a user may know the ids of what already exists in their world (their account,
            # an earlier booking), so a walk that starts at a function taking an id is
            # translatable; earlier outputs still come first in forth-translation
            for name, found in _state_identifiers(env.state()).items():
                values.setdefault(name, found)
        return values


def make_runtime(tools: Sequence[Tool], seed: int, runner: Any = None) -> EpisodeRuntime:
    """The runtime of one episode. With a runner whose ``simulate_tool_output`` task has a
    model (LLM mode), spec-only tools get their outputs from that model through the runner
    (cached, so a rerun makes no request); otherwise from the schema simulator."""
    from magnet_lib.tasks.simulate import model_simulator  # the task module imports this one

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
    elif key is not None and isinstance(state, str) and is_identifier_field(key):
        seen = found.setdefault(key, [])
        if state not in seen and len(seen) < 20:
            seen.append(state)
    return found
