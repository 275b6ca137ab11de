"""``simulate_tool_output``: the output of a spec-only tool for one call (paper section 3.2).

StableToolBench APIs in the paper's pool have a specification but no implementation; their
outputs are simulated by an LLM. Input: the tool (with its response schema), the call's
arguments and the earlier calls of the episode with their outputs (so identifiers stay
consistent). Output: :class:`SimulatedOutput`, the JSON object the tool returns, validated
against the response schema with ``jsonschema``; an ``{"error": {...}}`` object is accepted
too (a call may fail, and execution errors are outputs, never exceptions).

Offline: :class:`SimulatedExecutor` (below), seeded, with the episode's earlier
calls replayed into its memory: the same output the runtime's own simulator gives for the
same call. :func:`model_simulator` plugs the task into an episode's runtime in LLM mode.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any, ClassVar

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.llm.task import ParseError, Task, extract_json
from magnet_lib.models import Tool, stable_hash
from magnet_lib.pool.envs import error_output
from magnet_lib.pool.function_pool import validate_arguments
from magnet_lib.vocabulary import is_identifier, singular_name

#: filler words of simulated free-text values (also the placeholder values a user states)
PLACEHOLDER_WORDS = ["alpha", "bright", "cedar", "delta", "ember", "fjord", "granite", "harbor", "iris", "juniper", "kestrel", "lumen"]


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
            return [self._value(singular_name(name), items, rng, {}) for _ in range(rng.randint(1, 3))]
        if kind == "boolean":
            return rng.random() < 0.85  # checks mostly pass, so gated actions can follow
        if kind == "integer":
            value = rng.randint(int(schema.get("minimum", 1)), int(schema.get("maximum", 100)))
        elif kind == "number":
            value = round(rng.uniform(float(schema.get("minimum", 1)), float(schema.get("maximum", 1000))), 2)
        elif is_identifier(name):
            known = self.memory.get(name)
            value = known[-1] if known and rng.random() < 0.5 else f"{name.split('_')[0][:3].upper()}-{rng.randrange(100000, 999999)}"
        elif schema.get("format") == "date":
            value = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        elif schema.get("format") == "date-time":
            value = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        else:
            value = f"{name.replace('_', ' ')} {rng.choice(PLACEHOLDER_WORDS)}"
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
                self._recall(singular_name(name), schema.get("items", {"type": "string"}), item, {})
        else:
            self._remember(name, value)

    def _recall_leaves(self, value: Any, field: str = "") -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                self._recall_leaves(sub, key)
        elif isinstance(value, list):
            for sub in value:
                self._recall_leaves(sub, singular_name(field))
        elif field:
            self._remember(field, value)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["message"],
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriorCall(_Model):
    """An earlier call of the same episode and what it returned."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    response: dict[str, Any] | None = Field(
        None,
        description="Response schema of the called function; lets the offline simulator replay the call exactly. Not shown to the model.",
    )


class SimulateInput(_Model):
    tool: Tool
    arguments: dict[str, Any] = Field(default_factory=dict)
    history: list[PriorCall] = Field(default_factory=list, description="Earlier calls of the episode, oldest first.")
    seed: int = Field(0, description="Seed of the episode (offline outputs are deterministic for it).")


class SimulatedOutput(_Model):
    output: dict[str, Any]

    @property
    def is_error(self) -> bool:
        return set(self.output) == {"error"}


def expected_schema(tool: Tool) -> dict[str, Any]:
    """The schema a simulated output must satisfy: the response schema when it describes an
    object, else ``{"result": <response schema>}`` (what the simulator returns for scalars)."""
    schema = tool.response or {}
    if schema.get("type", "object") == "object" and schema.get("properties"):
        return schema
    return {"type": "object", "properties": {"result": schema}, "required": ["result"]}


def offline_output(item: SimulateInput) -> SimulatedOutput:
    """The schema-based simulator, its memory filled from the episode's earlier calls."""
    executor = SimulatedExecutor([item.tool], item.seed)
    for prior in item.history:
        output = prior.output if isinstance(prior.output, dict) else {"result": prior.output}
        executor.record(prior.name, prior.arguments, output, prior.response)
    return SimulatedOutput(output=executor.call(item.tool.name, item.arguments))


def _problems(schema: dict[str, Any], value: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))[:8]:
        where = ".".join(str(p) for p in error.absolute_path) or "output"
        out.append(f"- {where}: {error.message}")
    return out


class SimulateToolOutputTask(Task[SimulateInput, SimulatedOutput]):
    name: ClassVar[str] = "simulate_tool_output"
    template: ClassVar[str] = "simulate_tool_output.md"
    input_model: ClassVar[type[BaseModel]] = SimulateInput
    output_model: ClassVar[type[BaseModel]] = SimulatedOutput

    def variables(self, item: SimulateInput) -> dict[str, Any]:
        return {
            "tool": item.tool,
            "arguments": item.arguments,
            "history": item.history,
            "expected_schema": expected_schema(item.tool),
        }

    def parse(self, text: str, item: SimulateInput) -> SimulatedOutput:
        data = extract_json(text)
        if not isinstance(data, dict):
            raise ParseError(f"answer with one JSON object, the output of {item.tool.name}; got {type(data).__name__}")
        if "error" in data and not _problems(ERROR_SCHEMA, data):
            return SimulatedOutput(output=data)
        problems = _problems(expected_schema(item.tool), data)
        if problems:
            raise ParseError(f"the output does not follow the response schema of {item.tool.name}:\n" + "\n".join(problems))
        return SimulatedOutput(output=data)

    def offline(self, item: SimulateInput) -> SimulatedOutput:
        return offline_output(item)

    def answer_text(self, output: SimulatedOutput) -> str:
        return json.dumps(output.output, ensure_ascii=False)

    def response_schema(self, item: SimulateInput) -> dict[str, Any]:
        """The tool's response schema (or an error object)."""
        return {"anyOf": [expected_schema(item.tool), ERROR_SCHEMA]}


SIMULATE_TOOL_OUTPUT = SimulateToolOutputTask()


class ModelSimulator:
    """Outputs of spec-only tools from the model, one ``simulate_tool_output`` item per call,
    through a :class:`~magnet_lib.llm.runner.TaskRunner` (its response cache makes a rerun
    free). An :data:`~magnet_lib.pool.execution.OutputSimulator` for :class:`EpisodeRuntime`."""

    def __init__(self, runner: Any):
        self.runner = runner

    def __call__(
        self, tool: Tool, arguments: dict[str, Any], history: list[dict[str, Any]], seed: int
    ) -> tuple[dict[str, Any] | None, str | None]:
        item = SimulateInput(tool=tool, arguments=arguments, history=[PriorCall(**h) for h in history], seed=seed)
        (result,) = self.runner.run(SIMULATE_TOOL_OUTPUT, [item])
        return (result.value.output, None) if result.ok else (None, result.reject_reason)

    def __deepcopy__(self, memo: dict) -> ModelSimulator:
        return self  # a runtime's snapshot shares the runner (and its cache and accounting)


def model_simulator(runner: Any) -> ModelSimulator | None:
    """A simulator backed by ``runner`` when it has a model for ``simulate_tool_output``
    (LLM mode); None offline, where the runtime's schema simulator answers by itself."""
    if runner is None or runner.model_for(SIMULATE_TOOL_OUTPUT) is None:
        return None
    return ModelSimulator(runner)
