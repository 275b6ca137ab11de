"""The plan of a turn (paper section 3.3, before back-translation): where every argument's
value comes from.

For each call of a turn the planner fixes, up front, the source of every required argument:
an output of an earlier call of the same turn, an earlier turn's output, or a value the user
states (from the episode's world). A plan is probed on a copy of the world before a query is
asked for it; parallel copies of a call take several values at hand for one argument.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from magnet_lib.models import (
    Call,
    Tool,
)
from magnet_lib.pool.envs import is_error
from magnet_lib.pool.execution import EpisodeRuntime, schema_user_values
from magnet_lib.pool.function_pool import validate_arguments
from magnet_lib.translation.back_translation import (
    FunctionRequest,
    ParallelValues,
)
from magnet_lib.translation.forth_translation import (
    PlannedCall,
    ValueSource,
    find_in_outputs,
    find_in_schemas,
    fits,
    match_score,
    output_leaves,
    resolve_same_turn,
    state_values,
)
from magnet_lib.vocabulary import is_identifier


class PlanError(ValueError):
    """No value source for a required parameter."""


# --------------------------------------------------------------------------- offered tools


def choose_offered(functions: Sequence[str], category_tools: Sequence[Tool], key: str, distractors: int) -> list[str]:
    """The episode's own functions plus ``distractors`` other tools of the same category, in
    pool order; the choice depends only on ``key`` and the category's tool *names*."""
    own = list(dict.fromkeys(functions))
    others = sorted(t.name for t in category_tools if t.name not in own)
    rng = random.Random(f"offered:{key}")
    extra = rng.sample(others, min(distractors, len(others)))
    chosen = set(own) | set(extra)
    return [t.name for t in category_tools if t.name in chosen]


def tool_prompt_spec(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


# --------------------------------------------------------------------------- the plan


@dataclass
class HistoryCall:
    turn: int
    call: Call
    output: Any


def _pick(options: Sequence[Any], schema: dict[str, Any], taken: list[Any], rng: random.Random) -> Any:
    fitting = [o for o in options if fits(o, schema)]
    fresh = [o for o in fitting if o not in taken] or fitting
    return fresh[rng.randrange(len(fresh))] if fresh else None


def user_value(
    param: str, schema: dict[str, Any], runtime: EpisodeRuntime, tool: Tool, rng: random.Random, taken: list[Any], strict: bool = False
) -> ValueSource | None:
    """A value the user states for ``param``: from the environment's user values, the enum,
    the default, the environment's state, or the schema (in that order). ``strict``: only
    values a user really knows (the environment's user values, the enum, the default).

    Schema-made values are used for spec-only tools (their simulator accepts them) and for
    parameters that are not identifiers; an executable tool's identifier must exist."""
    known = runtime.user_values()
    for key in sorted(known, key=lambda k: -match_score(param, k)):
        if match_score(param, key) < 2.0:
            break
        value = _pick(known[key], schema, taken, rng)
        if value is not None:
            return ValueSource(kind="query", value=value, origin="user_values")
    if "enum" in schema:
        value = _pick(schema["enum"], schema, taken, rng)
        if value is not None:
            return ValueSource(kind="query", value=value, origin="enum")
    if "default" in schema and fits(schema["default"], schema):
        return ValueSource(kind="query", value=schema["default"], origin="default")
    if strict:
        return None
    value = _pick(state_values(runtime.state(), param, schema), schema, taken, rng)
    if value is not None:
        return ValueSource(kind="query", value=value, origin="state")
    if tool.executable and is_identifier(param):
        return None
    value = _pick(schema_user_values(tool).get(param, []), schema, taken, rng)
    if value is not None:
        return ValueSource(kind="query", value=value, origin="schema")
    return None


def plan_turn(
    functions: Sequence[str],
    tools: dict[str, Tool],
    history: Sequence[HistoryCall],
    runtime: EpisodeRuntime,
    rng: random.Random,
    attempt: int = 0,
    *,
    optional_p: float,
) -> list[PlannedCall]:
    """Sources for every required argument of the turn's calls (and, each with probability
    ``optional_p``, optional ones the user could know).

    An identifier nobody produced (no earlier output, not in the environment's state) has
    no source: the call could only fail, so planning fails."""
    recent = list(reversed(history))
    last_turn = recent[0].turn if recent else None
    plan: list[PlannedCall] = []
    for j, name in enumerate(functions):
        tool = tools[name]
        props = tool.properties
        arguments: dict[str, ValueSource] = {}
        used: set[tuple[str, str]] = set()
        taken: list[Any] = []
        same_taken: set[tuple[int, str]] = set()
        optional = [p for p in props if p not in tool.required and rng.random() < optional_p]
        for param in [*tool.required, *optional]:
            schema = props.get(param, {})
            source: ValueSource | None = None
            same = find_in_schemas(param, schema, [(i, tools[functions[i]].response) for i in range(j)], same_taken)
            if same is not None and (match_score(param, same[1]) >= 2.0 or same[0] == j - 1):
                source = ValueSource(kind="same_turn", key=same[1], call=same[0])
                same_taken.add(same)
            # a retry varies the choice: another tied value (attempt 1), then values the user
            # states instead of earlier outputs where the user could know them (attempt 2+)
            from_history = recent and not (
                attempt >= 2 and not is_identifier(param) and user_value(param, schema, runtime, tool, rng, taken, strict=True)
            )
            if source is None and from_history:
                pick = rng if attempt >= 1 else None
                found = find_in_outputs(param, schema, [h.output for h in recent], used, allow_type_only=False, rng=pick)
                if found is None:
                    previous = [h.output for h in recent if h.turn == last_turn]
                    found = find_in_outputs(param, schema, previous, used, allow_type_only=True, rng=pick)
                if found is not None:
                    turn = next(h.turn for h in recent if any(k == found[0] and v == found[1] for k, v in output_leaves(h.output)))
                    kind = "previous_turn" if turn == last_turn else "earlier_turn"
                    source = ValueSource(kind=kind, value=found[1], key=found[0], call=turn)
                    used.add((found[0], json.dumps(found[1], sort_keys=True)))
            if source is None:
                if param not in tool.required:
                    known = runtime.user_values()
                    if param not in known:
                        continue
                source = user_value(param, schema, runtime, tool, rng, taken)
                if source is None:
                    if param in tool.required:
                        raise PlanError(f"{name}: no value for required parameter '{param}'")
                    continue
                taken.append(source.value)
            arguments[param] = source
        plan.append(PlannedCall(name=name, arguments=arguments))
    return plan


def parallel_values(
    planned: PlannedCall, param: str, tool: Tool, history: Sequence[HistoryCall], runtime: EpisodeRuntime, rng: random.Random
) -> list[Any]:
    """Up to 3 distinct values for ``param`` of a planned call, its planned value among them:
    from an earlier output, the first values of the planned value's field in that output (so
    the query can say "the first two results"); from the user, more values the user could
    state from the same kind of source. Fewer than 2: the call cannot go parallel."""
    source = planned.arguments[param]
    schema = tool.properties.get(param, {})
    others = [s.value for p, s in planned.arguments.items() if p != param]
    if source.value is None or isinstance(source.value, (list, dict)):
        return []
    if source.kind == "query":
        values = [source.value]
        strict = source.origin in ("user_values", "enum", "default")
        while len(values) < 3:
            extra = user_value(param, schema, runtime, tool, rng, values, strict=strict)
            if extra is None or extra.value in values or extra.value in others:
                break
            values.append(extra.value)
        return values
    output = next(
        (h.output for h in reversed(history) if h.turn == source.call and (source.key, source.value) in output_leaves(h.output)), None
    )
    values = []
    for key, value in output_leaves(output):
        if key != source.key or isinstance(value, list) or not fits(value, schema) or value in values:
            continue
        if value in others or len(values) == 3:
            break
        values.append(value)
    return values if source.value in values else []


def parallel_plan(
    plan: Sequence[PlannedCall],
    tools: dict[str, Tool],
    history: Sequence[HistoryCall],
    runtime: EpisodeRuntime,
    rng: random.Random,
    *,
    max_calls: int,
    skip: frozenset[str] = frozenset(),
) -> list[PlannedCall] | None:
    """The plan with one of its calls made 2-3 times side by side (parallel calls, as when a
    user asks the same for several places), each with another value of one required
    argument; the turn keeps at most ``max_calls`` calls. Only a call that neither uses nor
    feeds a same-turn output goes parallel. None when no call has several values at hand."""
    room = max_calls - len(plan)
    feeding = {d for p in plan for d in p.depends_on()}
    options = []
    for k, planned in enumerate(plan):
        if room < 1 or k in feeding or planned.depends_on() or planned.name in skip:
            continue
        tool = tools[planned.name]
        for param in tool.required:
            if param in planned.arguments:
                values = parallel_values(planned, param, tool, history, runtime, rng)
                if len(values) >= 2:
                    options.append((k, param, values))
    if not options:
        return None
    k, param, values = options[rng.randrange(len(options))]
    count = min(len(values), room + 1, rng.choice((2, 3)))
    base = plan[k]
    copies = [
        PlannedCall(
            name=base.name, arguments={**base.arguments, param: base.arguments[param].model_copy(update={"value": v})}, parallel=param
        )
        for v in values[:count]
    ]

    def shifted(planned: PlannedCall) -> PlannedCall:  # same-turn references past the copies move with them
        moved = {
            p: s.model_copy(update={"call": s.call + count - 1}) if s.kind == "same_turn" and s.call > k else s
            for p, s in planned.arguments.items()
        }
        return planned.model_copy(update={"arguments": moved})

    return [*plan[:k], *copies, *[shifted(p) for p in plan[k + 1 :]]]


def probe_plan(plan: Sequence[PlannedCall], tools: dict[str, Tool], runtime: EpisodeRuntime) -> str | None:
    """Run a plan on a copy of the runtime, round by round as forth-translation would: why
    it fails, or None when every call executes. Picking a plan that works before asking for
    a query spends no model call on a turn that cannot execute."""
    trial = runtime.offline_copy()
    outputs: dict[int, Any] = {}
    pending = list(range(len(plan)))
    while pending:
        ready = []
        for k in pending:
            try:
                call = resolve_same_turn(plan[k], outputs, tools[plan[k].name].properties)
            except ValueError as exc:
                return str(exc)
            if call is not None:
                ready.append((k, call))
        if not ready:
            return "the plan's calls wait for each other"
        for k, call in ready:
            problems = validate_arguments(tools[call.name], call.arguments)
            if problems:
                return "; ".join(problems)
            output = trial.execute(call)
            if is_error(output):
                return f"{call.name} returned an error: {output['error'].get('code')}: {output['error'].get('message')}"
            outputs[k] = output
            pending.remove(k)
    return None


_REF = {"previous_turn": "previous", "earlier_turn": "earlier", "same_turn": "same_turn", "query": "query"}


def function_requests(plan: Sequence[PlannedCall], tools: dict[str, Tool]) -> list[FunctionRequest]:
    """One request per planned call; parallel calls of a function make one request that asks
    for each of their values."""
    out: list[FunctionRequest] = []
    for k, planned in enumerate(plan):
        each = planned.parallel
        if each is not None and k > 0 and plan[k - 1].parallel == each and plan[k - 1].name == planned.name:
            out[-1].parallel.values.append(planned.arguments[each].value)
            continue
        stated = {p: s.value for p, s in planned.arguments.items() if s.kind == "query" and p != each}
        refs = {p: _REF[s.kind] for p, s in planned.arguments.items() if s.kind != "query" and p != each}
        parallel = None
        if each is not None:
            parallel = ParallelValues(param=each, values=[planned.arguments[each].value], source=_REF[planned.arguments[each].kind])
        out.append(
            FunctionRequest(
                function=planned.name, description=tools[planned.name].description, values=stated, from_outputs=refs, parallel=parallel
            )
        )
    return out


# --------------------------------------------------------------------------- one episode
