"""Forth-translation (paper section 3.3): a turn's query + its functions -> executable calls.

Values of a call come from, in this order of preference:

1. the output of an earlier call *in the same turn* (nested call, short dependency): the
   calls of a turn execute round by round, so the second can use the first's output;
2. the outputs of earlier turns, most recent first (the previous turn, then older ones: a
   long dependency), matched by field name (``place_id`` feeds ``origin_place_id``);
3. what the user states in the query: values a user could know, from the environment
   (``EpisodeRuntime.user_values``), the parameter's enum or default, or the environment's
   state.

The *plan* (:class:`PlannedCall`) fixes these sources before the query is written, so the
query states exactly the values the calls use. The model-backed task answers in the paper's
format, ``Thought: ...`` then ``Answer: [calls]`` or ``Answer: FINISH``; the offline
implementation reads the plan and fills same-turn values from the outputs it is shown.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, Field

from magnet_lib.llm.task import ParseError, Task
from magnet_lib.models import Call, Tool
from magnet_lib.pool.function_pool import validate_arguments
from magnet_lib.tool_calls import parse_calls
from magnet_lib.vocabulary import leaves, name_tokens, quantity, singular, singular_name, text_words

SourceKind = Literal["query", "same_turn", "previous_turn", "earlier_turn"]

#: field names too generic to link two functions on a partial-name match alone
GENERIC_KEYS = {
    "id",
    "name",
    "value",
    "type",
    "status",
    "message",
    "result",
    "success",
    "unit",
    "description",
    "title",
    "kind",
    "count",
    "total",
}


# --------------------------------------------------------------------------- plan


class ValueSource(BaseModel):
    """Where one argument's value comes from."""

    kind: SourceKind
    value: Any = Field(None, description="The value; None for same_turn (known after the earlier call runs).")
    key: str | None = Field(None, description="Output field the value is taken from (outputs only).")
    call: int | None = Field(None, description="same_turn: index of the call in the turn; else the turn index.")
    origin: str | None = Field(None, description="query values: user_values | enum | default | state | schema.")
    nth: int | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="same_turn, for one call per element of a list that call returns ('the details of the first two'): the "
        "nth (0 = first) distinct value of ``key`` in that output.",
    )


class PlannedCall(BaseModel):
    """A call of the turn with the source of every argument (values decided up front)."""

    name: str
    arguments: dict[str, ValueSource]
    parallel: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Set on calls of one function made side by side in the turn: the parameter whose value differs between them.",
    )

    def depends_on(self) -> set[int]:
        return {s.call for s in self.arguments.values() if s.kind == "same_turn" and s.call is not None}

    def stated(self) -> dict[str, Any]:
        return {p: s.value for p, s in self.arguments.items() if s.kind == "query"}


def plan_rounds(plan: Sequence[PlannedCall]) -> list[int]:
    """Round of each planned call: one more than the latest round it depends on (0 when it
    needs no same-turn output), and never before an earlier call of the turn: the turn's
    order is the order the world changes in (add to the cart, then place the order)."""
    rounds: list[int] = []
    for call in plan:
        deps = [rounds[d] for d in call.depends_on() if d < len(rounds)]
        rounds.append(max(max(deps) + 1 if deps else 0, rounds[-1] if rounds else 0))
    return rounds


# --------------------------------------------------------------------------- matching values to parameters


@lru_cache(maxsize=1 << 16)  # a pure function of two names, asked millions of times a run
def match_score(param: str, key: str) -> float:
    """How well an output field name fits a parameter name: 3 exact, 2.5 plural/singular,
    2 one extends the other ('place_id' -> 'origin_place_id'), 1 the same for generic
    names, 0 unrelated or of different quantities (a wind speed never feeds a temperature)."""
    pq, kq = quantity(param), quantity(key)
    if pq and kq and pq != kq:
        return 0.0
    if param == key:
        return 3.0
    if singular_name(param) == singular_name(key):
        return 2.5
    short, long_ = sorted((singular_name(param), singular_name(key)), key=len)
    if long_.endswith("_" + short) or long_.startswith(short + "_"):
        return 1.0 if short in GENERIC_KEYS else 2.0
    return 0.0


#: parameter names that say only "a value": what they take is in their description
DESCRIBED_PARAMS = frozenset({"value", "amount", "quantity", "number", "input", "data", "text"})


def field_score(param: str, schema: dict[str, Any], key: str) -> float:
    """:func:`match_score`, and for a parameter named only 'value' or 'amount' the words of
    its description: ``value`` ("The distance to convert.") takes a ``distance`` field."""
    score = match_score(param, key)
    if score >= 2.0 or param not in DESCRIBED_PARAMS:
        return score
    described = text_words(str(schema.get("description", "")))
    words_of_key = {singular(t) for t in name_tokens(key)} - GENERIC_KEYS
    pq, kq = quantity("", str(schema.get("description", ""))), quantity(key)
    if words_of_key and words_of_key <= described and not (pq and kq and pq != kq):
        return 2.0
    return score


#: the two sides of a trip or a move: a parameter that names no side takes the destination's
#: value (a hotel search after a flight is for the city the user flies to, not from)
_ORIGIN_SIDE = frozenset({"origin", "from", "departure", "pickup"})
_DESTINATION_SIDE = frozenset({"destination", "to", "arrival", "dropoff"})


#: where a trip goes: only a place has a destination the user is headed for (an account paid
#: from is the transfer's source, so accounts keep their order)
_PLACE_WORDS = frozenset({"city", "location", "place", "airport", "address", "station", "country", "region", "destination"})


def side_rank(param: str, key: str) -> int:
    """0 when ``key`` is the field a parameter of no side should take first (the destination,
    or a field of no side), 1 for the origin side of a place; a parameter that names a side
    takes its own."""
    ptoks, ktoks = set(name_tokens(param)), set(name_tokens(key))
    if ptoks & (_ORIGIN_SIDE | _DESTINATION_SIDE) or not ktoks & _PLACE_WORDS:
        return 0
    return 1 if ktoks & _ORIGIN_SIDE else 0


@lru_cache(maxsize=4096)
def _validator(schema_json: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_json))


#: schema keys that constrain nothing a value is checked for (what the fast path of fits may ignore)
_ANNOTATIONS = frozenset({"type", "description", "default", "title", "examples"})
_SCALAR_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    # JSON Schema counts 3.0 as an integer too
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def fits(value: Any, schema: dict[str, Any]) -> bool:
    """Does ``value`` satisfy the parameter's schema (type, enum, bounds)? A schema that only
    names a scalar type is checked directly (the planner asks hundreds of thousands of times
    a run); any other goes to the JSON Schema validator."""
    if value is None:
        return False
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _SCALAR_TYPES and schema.keys() <= _ANNOTATIONS:
        return _SCALAR_TYPES[kind](value)
    return _validator(json.dumps(schema, sort_keys=True)).is_valid(value)


def output_leaves(value: Any) -> Iterator[tuple[str, Any]]:
    """(field name, value) for every scalar of an output and every list of scalars as a whole
    (a parameter may take the list); document order, best results first."""
    return leaves(value, whole_lists=True)  # type: ignore[return-value]


def schema_leaves(schema: dict[str, Any], key: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field name, schema) for every scalar field a response schema promises."""
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        for k, sub in (schema.get("properties") or {}).items():
            yield from schema_leaves(sub, k)
    elif kind == "array":
        items = schema.get("items") or {}
        if key is not None and items.get("type") in ("string", "number", "integer", "boolean"):
            yield key, schema
        yield from schema_leaves(items, key)
    elif key is not None:
        yield key, schema


def _schema_types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    if "number" in kinds:
        kinds.add("integer")
    return kinds - {"null"}


def _enum(schema: dict[str, Any]) -> list[Any] | None:
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    return None


def schema_compatible(param: dict[str, Any], leaf: dict[str, Any]) -> bool:
    """Could a value described by ``leaf`` be passed to ``param`` (types and enums)?"""
    ptypes, ltypes = _schema_types(param), _schema_types(leaf)
    if ptypes and ltypes and not (ptypes & ltypes):
        return False
    if "enum" in param:
        values = _enum(leaf)
        return values is not None and bool(set(map(str, param["enum"])) & set(map(str, values)))
    return True


def find_in_outputs(
    param: str,
    schema: dict[str, Any],
    outputs: Sequence[Any],
    used: set[tuple[str, str]],
    rng: random.Random | None = None,
    wide: bool = False,
    refused: Callable[[Any], bool] | None = None,
) -> tuple[str, Any] | None:
    """The best (field, value) for ``param`` among ``outputs`` (most preferred first):
    highest name score, then the earliest output in the given order, then the destination
    side over the origin for a parameter that names no side (:func:`side_rank`), then document order
    (with ``rng``: a random one of the values tied on score and output, for a retry; with
    ``wide`` too, tied on score in any output);
    a value already used by another argument of the same call is skipped, and so is one in
    one ``refused`` rejects (the world refuses it for this call). Only fields whose names agree with the
    parameter count (score 2 and up): a value of the right type under another name is no source."""
    candidates: list[tuple[float, int, int, str, Any]] = []
    for rank, output in enumerate(outputs):
        for position, (key, value) in enumerate(output_leaves(output)):
            score = field_score(param, schema, key)
            if score < 2.0:  # values flow by name and role only, never by type alone
                continue
            if (key, json.dumps(value, sort_keys=True)) in used or not fits(value, schema) or value == "" or (refused and refused(value)):
                continue  # an empty string (an emptied cart's restaurant id) is no value
            candidates.append((-score, rank, side_rank(param, key), position, key, value))
    if not candidates:
        return None
    best = min(candidates, key=lambda c: c[:4])
    if rng is not None:  # ``wide``: any value whose field agrees by name, from any output (a later retry)
        tied = [c for c in candidates if (c[0] == best[0] and c[2] == best[2] if wide else c[:3] == best[:3])]
        best = tied[rng.randrange(len(tied))]
    return best[4], best[5]


def find_in_schemas(
    param: str,
    schema: dict[str, Any],
    responses: Sequence[tuple[int, dict[str, Any]]],
    taken: set[tuple[int, str]] = frozenset(),  # type: ignore[assignment]
) -> tuple[int, str] | None:
    """(call index, field) of a same-turn call whose response promises a field for ``param``;
    the latest call with the best name score wins (the nested call right before). A field
    in ``taken`` (already feeding another argument of the call) only counts on a name match."""
    best: tuple[float, int, str] | None = None
    for index, response in responses:
        for key, leaf in schema_leaves(response):
            score = field_score(param, schema, key)
            if score < 2.0 or (index, key) in taken:
                continue
            if not schema_compatible(schema, leaf):
                continue
            if best is None or (score, index, -side_rank(param, key)) > (best[0], best[1], -side_rank(param, best[2])):
                best = (score, index, key)
    return (best[1], best[2]) if best else None


def state_values(state_leaves: Iterable[tuple[str | None, Any]], param: str, schema: dict[str, Any]) -> list[Any]:
    """Values for ``param`` found in an environment state (fields of the same name), from the
    state's leaves (:meth:`EpisodeRuntime.state_leaves`)."""
    seen: list[Any] = []
    for key, value in state_leaves:
        if match_score(param, key) >= 2.0 and fits(value, schema) and value != "" and value not in seen:
            seen.append(value)
    return seen


# --------------------------------------------------------------------------- the task's data


class ForthTranslateInput(BaseModel):
    """One forth-translation request: the next calls of a turn."""

    queries: list[str] = Field(description="The user's message(s) of this request (a split query and its follow-up).")
    functions: list[dict[str, Any]] = Field(description="Specs (name, description, parameters) of the turn's functions.")
    history: list[dict[str, Any]] = Field(default_factory=list, description="Earlier turns: turn, function, arguments, output.")
    done: list[dict[str, Any]] = Field(default_factory=list, description="Calls already made in this turn, with outputs.")
    state_values: dict[str, list[Any]] = Field(default_factory=dict, description="Values the environment knows, per parameter name.")
    max_calls: int = 3
    attempt: int = 0
    feedback: str | None = None
    plan: list[PlannedCall] = Field(default_factory=list, description="Offline only: the plan the query was written from.")


class ForthTranslation(BaseModel):
    """The model's answer: reasoning, then the calls to make now (or FINISH)."""

    thought: str = ""
    calls: list[Call] = Field(default_factory=list)
    finish: bool = False


_ANSWER = re.compile(r"Answer\s*:\s*(.*)\Z", re.DOTALL | re.IGNORECASE)
_THOUGHT = re.compile(r"Thought\s*:\s*(.*?)(?=\n\s*Answer\s*:|\Z)", re.DOTALL | re.IGNORECASE)


def spec_tool(spec: dict[str, Any]) -> Tool:
    """A Tool from a prompt spec, for argument validation."""
    return Tool(
        name=spec["name"],
        category="",
        tool_class="",
        description=spec.get("description", ""),
        parameters=spec.get("parameters", {"type": "object", "properties": {}}),
        source="",
        executable=False,
    )


def check_calls(calls: Sequence[Call], functions: Sequence[dict[str, Any]], max_calls: int) -> None:
    """Raise :class:`ParseError` unless every call names one of ``functions`` and its
    arguments validate against that function's schema."""
    specs = {f["name"]: f for f in functions}
    if len(calls) > max_calls:
        raise ParseError(f"at most {max_calls} calls at once; make the rest after their inputs are known")
    for call in calls:
        if call.name not in specs:
            raise ParseError(f"'{call.name}' is not one of the functions of this turn: {', '.join(specs)}")
        problems = validate_arguments(spec_tool(specs[call.name]), call.arguments)
        if problems:
            raise ParseError("invalid arguments: " + "; ".join(problems))


def parse_answer(text: str, item: ForthTranslateInput) -> ForthTranslation:
    """Read ``Thought: ... Answer: [...]`` (or ``FINISH``) and validate the calls."""
    answer = _ANSWER.search(text)
    thought = _THOUGHT.search(text)
    body = answer.group(1).strip() if answer else text.strip()
    if body.upper().startswith("FINISH"):
        return ForthTranslation(thought=thought.group(1).strip() if thought else "", finish=True)
    calls = parse_calls(body)
    if not calls:
        raise ParseError("no calls in the answer; write 'Answer: FINISH' when nothing is left to call")
    check_calls(calls, item.functions, item.max_calls)
    return ForthTranslation(thought=thought.group(1).strip() if thought else "", calls=calls)


def answer_text(output: ForthTranslation) -> str:
    thought = output.thought or "I will make the calls the request needs."
    if output.finish:
        return f"Thought: {thought}\nAnswer: FINISH"
    calls = [{"name": c.name, "arguments": c.arguments} for c in output.calls]
    return f"Thought: {thought}\nAnswer: {json.dumps(calls, ensure_ascii=False)}"


# --------------------------------------------------------------------------- offline


def resolve_same_turn(planned: PlannedCall, done_outputs: dict[int, Any], schemas: dict[str, dict[str, Any]]) -> Call | None:
    """The call with same-turn values read from the outputs of the calls it depends on;
    None while one of them has not run."""
    arguments: dict[str, Any] = {}
    used: set[tuple[str, str]] = set()
    for param, source in planned.arguments.items():
        if source.kind != "same_turn":
            arguments[param] = source.value
            continue
        if source.call not in done_outputs:
            return None
        schema = schemas.get(param, {})
        output = done_outputs[source.call]
        if source.nth is not None:  # one of the calls made per element of the list that call returned
            listed: list[Any] = []
            for k, v in output_leaves(output):
                if k == source.key and fits(v, schema) and v != "" and v not in listed:
                    listed.append(v)
            if source.nth >= len(listed):
                raise ValueError(f"{planned.name}: output of call {source.call} has no value number {source.nth + 1} for '{param}'")
            arguments[param] = listed[source.nth]
            continue
        found = next(
            (
                (k, v)
                for k, v in output_leaves(output)
                if k == source.key and fits(v, schema) and v != "" and (k, json.dumps(v, sort_keys=True)) not in used
            ),
            None,
        ) or find_in_outputs(param, schema, [output], used)
        if found is None:
            raise ValueError(f"{planned.name}: output of call {source.call} has no usable value for '{param}'")
        used.add((found[0], json.dumps(found[1], sort_keys=True)))
        arguments[param] = found[1]
    return Call(name=planned.name, arguments=arguments)


def offline_answer(item: ForthTranslateInput) -> ForthTranslation:
    """The next round of the plan: every planned call not made yet whose same-turn inputs
    are available; FINISH when all are made."""
    done_outputs = {d["plan_index"]: d["output"] for d in item.done if "plan_index" in d}
    made = set(done_outputs)
    specs = {f["name"]: f for f in item.functions}
    calls: list[Call] = []
    rounds = plan_rounds(item.plan)
    now = min((r for i, r in enumerate(rounds) if i not in made), default=0)
    for index, planned in enumerate(item.plan):
        if index in made or rounds[index] != now:  # the turn's order: a later call waits for the earlier ones
            continue
        props = specs.get(planned.name, {}).get("parameters", {}).get("properties", {})
        call = resolve_same_turn(planned, done_outputs, props)
        if call is not None:
            calls.append(call)
    if not calls:
        if len(made) < len(item.plan):
            raise ValueError("the plan's remaining calls wait for outputs that never came")
        return ForthTranslation(thought="Everything the request needs has been called.", finish=True)
    calls = calls[: item.max_calls]
    names = ", ".join(c.name for c in calls)
    thought = f"The request needs {names}; the values come from the request and the earlier outputs."
    return ForthTranslation(thought=thought, calls=calls)


def choose(options: Sequence[Any], rng: random.Random) -> Any:
    return options[rng.randrange(len(options))]


# --------------------------------------------------------------------------- the LLM task


class ForthTranslateTask(Task[ForthTranslateInput, ForthTranslation]):
    name = "forth_translate"
    template = "forth_translate.md"
    input_model = ForthTranslateInput
    output_model = ForthTranslation
    temperature = 0.0

    def parse(self, text: str, item: ForthTranslateInput) -> ForthTranslation:
        return parse_answer(text, item)

    def offline(self, item: ForthTranslateInput) -> ForthTranslation:
        return offline_answer(item)

    def answer_text(self, output: ForthTranslation) -> str:
        return answer_text(output)


FORTH_TRANSLATE = ForthTranslateTask()
