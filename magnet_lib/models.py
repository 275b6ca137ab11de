"""The nouns that flow through the pipeline, defined once and imported everywhere.

tool source -> Tool -> Edge -> FSP -> AugmentedFSP -> Episode -> Trajectory -> PreferencePair

Every item carries the id of the item it came from, so a training example can be traced back
to the walk and the tools that made it. Tables store these models one row each
(see :mod:`magnet_lib.tables` for how nested fields become Parquet columns).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSONSchema = dict[str, Any]
Message = dict[str, Any]

#: Who produced an item: "offline" for the deterministic implementations, else the model name.
OFFLINE = "offline"


def stable_hash(value: Any, length: int = 16) -> str:
    """A short content hash of any JSON-serialisable value (sorted keys, stable across runs)."""
    payload = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- function pool


class Tool(_Row):
    """One function of the pool (paper section 3.2): its signature plus category/class labels."""

    name: str = Field(description="Unique function name across the whole pool.")
    category: str = Field(description="Partition key: the category the tool belongs to, e.g. 'travel'.")
    tool_class: str = Field(description="Finer class inside the category, e.g. 'Flight booking'.")
    description: str
    parameters: JSONSchema = Field(description="JSON Schema of the arguments (type 'object').")
    response: JSONSchema = Field(default_factory=dict, description="JSON Schema of the output.")
    source: str = Field(description="'builtin:<module>' or the spec file the tool was read from.")
    executable: bool = Field(description="True when a real environment runs it; False = simulated.")

    def openai_spec(self) -> dict[str, Any]:
        """The OpenAI function-calling spec offered to a model."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    @property
    def properties(self) -> dict[str, JSONSchema]:
        return dict(self.parameters.get("properties", {}))


class ToolReject(_Row):
    """A tool spec that failed validation: where it is and what is wrong with it."""

    category: str
    file: str
    tool: str = Field(description="Tool name, or '<index N>' when the name itself is missing.")
    field: str = Field(description="Dotted path of the offending field, e.g. 'parameters.required'.")
    message: str

    def __str__(self) -> str:  # the form users read in logs and the CLI
        return f"{self.file}: tool '{self.tool}': {self.field}: {self.message}"


# --------------------------------------------------------------------------- dependency graph

EdgeKind = Literal["premise", "full_input", "partial_input"]


class Edge(_Row):
    """A judged dependency src -> dst of the local dependency graph (paper section 3.4)."""

    src: str
    dst: str
    category: str = Field(description="Category partition of the src function.")
    kind: EdgeKind
    nested: bool = Field(description="dst needs a value only src's output gives; a user would not name dst.")
    evidence: str = Field(description="Which output field feeds which parameter, or why.")
    judge: str = Field(description="'offline' or the model that judged the edge.")
    score: float = Field(ge=0.0, le=1.0)


# --------------------------------------------------------------------------- function signature paths


class FSP(_Row):
    """An initial function signature path: a random walk, one function per turn."""

    fsp_id: str
    category: str
    path: list[str]
    start: str
    seed: int


TurnOp = Literal["walk", "merge", "insert_short", "insert_long", "split"]
TurnLabel = Literal["call", "miss_func", "miss_params"]
FSPVariant = Literal["no_split", "miss_func", "miss_params"]


class FSPTurn(_Row):
    """One turn of an augmented FSP: the functions the turn calls and how the turn was made.

    A split turn (``op='split'``) has no functions: it asks for what the *next* turn does,
    but the function is not offered (``miss_func``) or a required value is left out
    (``miss_params``); ``target`` names the function concerned.
    """

    functions: list[str]
    op: TurnOp
    label: TurnLabel = "call"
    target: str | None = None


class AugmentedFSP(_Row):
    """An FSP after Merge -> Insert (-> Split); ``parent_fsp_id`` points at the initial walk."""

    fsp_id: str
    parent_fsp_id: str
    category: str
    variant: FSPVariant
    turns: list[FSPTurn]
    seed: int


# --------------------------------------------------------------------------- translation


class Call(_Row):
    """An executable function call."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    def to_openai(self, call_id: str) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }

    def to_python(self) -> str:
        """The BFCL call-string form, e.g. ``f(a=1, b='x')``."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        return f"{self.name}({args})"


class EpisodeTurn(_Row):
    """One translated turn: the user query, the calls that answer it and their real outputs."""

    index: int
    query: str
    functions: list[str]
    calls: list[Call] = Field(default_factory=list)
    outputs: list[Any] = Field(default_factory=list)
    op: TurnOp
    label: TurnLabel = "call"
    target: str | None = None
    missing: str | None = Field(default=None, description="Withheld function (miss_func) or parameter (miss_params).")
    offered: list[str] = Field(default_factory=list, description="Names of the tools offered during this turn.")
    rounds: list[int] = Field(default_factory=list, description="Per call: its round in the turn (0 = first; >0 = nested).")
    sources: list[dict[str, str]] = Field(
        default_factory=list,
        description="Per call: parameter -> where its value came from (query, same_turn, previous_turn, earlier_turn, model).",
    )


class Episode(_Row):
    """An augmented FSP translated into queries and executed calls (``query_call_pairs`` row)."""

    episode_id: str
    fsp_id: str
    parent_fsp_id: str | None = Field(None, description="The initial walk the augmented FSP came from.")
    category: str
    variant: FSPVariant
    seed: int
    initial_state: dict[str, Any] = Field(default_factory=dict)
    turns: list[EpisodeTurn] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list, description="Names of the tools offered in the episode.")
    status: Literal["ok", "rejected"] = "ok"
    reject_reason: str | None = None
    notes: list[str] = Field(
        default_factory=list,
        description="Remarks on how it was made, e.g. a tool output the model failed to simulate (the schema simulator's output was used).",
    )
    generator: str = OFFLINE


# --------------------------------------------------------------------------- distillation & training

TrajectoryKind = Literal["multi_turn", "single", "parallel", "multiple", "irrelevance"]


class Trajectory(_Row):
    """A training conversation in OpenAI chat format with the tools it offers."""

    traj_id: str
    kind: TrajectoryKind
    category: str
    messages: list[Message]
    tools: list[dict[str, Any]] = Field(description="OpenAI function specs offered in the system prompt.")
    episode_id: str | None = None
    fsp_id: str | None = None
    parent_fsp_id: str | None = Field(None, description="The initial walk the FSP came from (the held-out split groups by it).")
    functions: list[str] = Field(default_factory=list, description="The pool functions the item was made from.")
    tool_updates: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Functions offered mid-conversation: {'message_index': i, 'tools': [OpenAI specs]} (miss_func).",
    )
    generator: str = OFFLINE


ErrorType = Literal[1, 2, 3, 4, 5]

ERROR_TYPES: dict[int, str] = {
    1: "nested call missing",
    2: "short dependency: an output of an earlier call in the same turn used wrongly",
    3: "long dependency: a value from earlier turns not used",
    4: "wrong summarisation: the reply misses or invents information",
    5: "missed function or parameters: calls when it should ask, or asks when it could call",
}


class NegativeHint(_Row):
    """A judged wrong turn of the student, turned into a misleading hint."""

    hint_id: str
    episode_id: str
    traj_id: str
    category: str
    turn_index: int
    error_type: ErrorType
    reason: str
    wrong_calls: list[Call] = Field(default_factory=list)
    wrong_text: str | None = None
    source: Literal["student", "injected"]
    judge: str = OFFLINE


class PreferencePair(_Row):
    """An mDPO pair: shared prompt, chosen and rejected multi-turn continuations."""

    pair_id: str
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    tools: list[dict[str, Any]]
    error_type: ErrorType
    source: Literal["student", "injected"]
    category: str
    episode_id: str
    traj_id: str
    hint_id: str | None = None
