"""``simulate_tool_output``: the output of a spec-only tool for one call (paper section 3.2).

StableToolBench APIs in the paper's pool have a specification but no implementation; their
outputs are simulated by an LLM. Input: the tool (with its response schema), the call's
arguments and the earlier calls of the episode with their outputs (so identifiers stay
consistent). Output: :class:`SimulatedOutput`, the JSON object the tool returns, validated
against the response schema with ``jsonschema``; an ``{"error": {...}}`` object is accepted
too (a call may fail, and execution errors are outputs, never exceptions).

Offline: :class:`magnet_lib.execution.SimulatedExecutor`, seeded, with the episode's earlier
calls replayed into its memory: the same output the runtime's own simulator gives for the
same call. :func:`model_simulator` plugs the task into an episode's runtime in LLM mode.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.execution import SimulatedExecutor
from magnet_lib.llm.task import ParseError, Task, extract_json
from magnet_lib.models import Tool

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
        None, description="Response schema of the called function; lets the offline simulator replay the call exactly. Not shown to the model."
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


SIMULATE_TOOL_OUTPUT = SimulateToolOutputTask()


class ModelSimulator:
    """Outputs of spec-only tools from the model, one ``simulate_tool_output`` item per call,
    through a :class:`~magnet_lib.llm.runner.TaskRunner` (its response cache makes a rerun
    free). An :data:`~magnet_lib.execution.OutputSimulator` for :class:`EpisodeRuntime`."""

    def __init__(self, runner: Any):
        self.runner = runner

    def __call__(self, tool: Tool, arguments: dict[str, Any], history: list[dict[str, Any]], seed: int) -> tuple[dict[str, Any] | None, str | None]:
        item = SimulateInput(tool=tool, arguments=arguments, history=[PriorCall(**h) for h in history], seed=seed)
        (result,) = self.runner.run(SIMULATE_TOOL_OUTPUT, [item])
        return (result.value.output, None) if result.ok else (None, result.reject_reason)

    def __deepcopy__(self, memo: dict) -> "ModelSimulator":
        return self  # a runtime's snapshot shares the runner (and its cache and accounting)


def model_simulator(runner: Any) -> ModelSimulator | None:
    """A simulator backed by ``runner`` when it has a model for ``simulate_tool_output``
    (LLM mode); None offline, where the runtime's schema simulator answers by itself."""
    if runner is None or runner.model_for(SIMULATE_TOOL_OUTPUT) is None:
        return None
    return ModelSimulator(runner)
