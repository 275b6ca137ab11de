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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from magnet_lib.graph.dependency import LOOKS
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
    plan_rounds,
    resolve_same_turn,
    state_values,
)
from magnet_lib.vocabulary import is_identifier, name_tokens, refers_to_world, singular_name

#: which values the world refuses for a parameter of the call being planned (None: any goes)
Refusal = Callable[[Any], bool] | None


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


def _pick(options: Sequence[Any], schema: dict[str, Any], taken: list[Any], rng: random.Random, refused: Refusal = None) -> Any:
    fitting = [o for o in options if fits(o, schema) and not (refused and refused(o))]
    fresh = [o for o in fitting if o not in taken] or fitting
    return fresh[rng.randrange(len(fresh))] if fresh else None


def user_value(
    param: str,
    schema: dict[str, Any],
    runtime: EpisodeRuntime,
    tool: Tool,
    rng: random.Random,
    taken: list[Any],
    strict: bool = False,
    refused: Refusal = None,
) -> ValueSource | None:
    """A value the user states for ``param``: from the environment's user values, the enum,
    the default, the environment's state, or the schema (in that order). ``strict``: only
    values a user really knows (the environment's user values, the enum, the default).
    ``refused``: which values the world refuses for this call (never chosen).

    Schema-made values are used for spec-only tools (their simulator accepts them) and for
    parameters that are not identifiers; an executable tool's identifier must exist."""
    known = runtime.user_values()
    for key in sorted(known, key=lambda k: -match_score(param, k)):
        if match_score(param, key) < 2.0:
            break
        value = _pick(known[key], schema, taken, rng, refused)
        if value is None and schema.get("type") == "array" and len(known[key]) >= 2:
            # a list the user names item by item (compress_files(file_paths) from the files they have)
            value = rng.sample(list(known[key]), 2)
            value = value if fits(value, schema) and not (refused and refused(value)) else None
        if value is not None:
            return ValueSource(kind="query", value=value, origin="user_values")
    if "enum" in schema:
        value = _pick(schema["enum"], schema, taken, rng, refused)
        if value is not None:
            return ValueSource(kind="query", value=value, origin="enum")
    if "default" in schema and fits(schema["default"], schema) and not (refused and refused(schema["default"])):
        return ValueSource(kind="query", value=schema["default"], origin="default")
    if strict:
        return None
    value = _pick(state_values(runtime.state_leaves(), param, schema), schema, taken, rng, refused)
    if value is not None:
        return ValueSource(kind="query", value=value, origin="state")
    if tool.executable and refers_to_world(param):  # an id, path or url of a real world must exist there
        return None
    value = _pick(schema_user_values(tool).get(param, []), schema, taken, rng, refused)
    if value is not None:
        return ValueSource(kind="query", value=value, origin="schema")
    return None


@dataclass
class _CallPlanning:
    """What planning one call of a turn knows: the turn's functions, the history (latest
    first), the world, and the values already chosen for this call."""

    index: int
    functions: Sequence[str]
    tools: dict[str, Tool]
    recent: list[HistoryCall]
    runtime: EpisodeRuntime
    rng: random.Random
    attempt: int
    #: functions whose values the user states where the user can (a miss_params target)
    prefer_stated: frozenset[str] = frozenset()
    #: take values from calls of the same turn (False: a fallback plan when those outputs hold none)
    same_turn: bool = True
    #: values the world refused for this call on an earlier try, per parameter (never chosen again)
    refused: dict[str, list[Any]] = field(default_factory=dict)
    #: the world as the turn's earlier calls leave it (what the state allows this call)
    trial: EpisodeRuntime | None = None
    #: parameters whose same-turn value the world refused: planned from another source
    not_same_turn: set[str] = field(default_factory=set)
    #: the values chosen for this call's parameters so far (what the state allows may depend on them)
    chosen: dict[str, Any] = field(default_factory=dict)
    #: state options among the schema's choices too (a later turn needs what only an option gives)
    options: bool = False
    #: the turn's calls planned before this one
    turn_plan: Sequence[PlannedCall] = ()
    taken: list[Any] = field(default_factory=list)
    used: set[tuple[str, str]] = field(default_factory=set)
    same_taken: set[tuple[int, str]] = field(default_factory=set)

    @property
    def tool(self) -> Tool:
        return self.tools[self.functions[self.index]]

    @property
    def last_turn(self) -> int | None:
        return self.recent[0].turn if self.recent else None

    def refusal(self, param: str) -> Refusal:
        """Which values of ``param`` the world refuses for this call: refused on an earlier
        try, or not allowed by the state as the turn's earlier calls leave it."""
        refused, trial, name, chosen = self.refused.get(param, []), self.trial, self.tool.name, self.chosen
        return lambda value: value in refused or (trial is not None and not trial.accepts(name, param, value, chosen))


class TrialWorlds:
    """The worlds trial calls made, remembered by (the world they ran on, the call): the
    probes of one turn plan its first calls again and again with the same values, and a
    plan's probe runs calls the planner already ran. A world here is never run on again (a
    call runs on a copy of it), and a copy of the same world gives the same output (its
    random generator is copied too), so a remembered world is the one the call would make.
    One instance serves one turn's planning from one runtime; it keeps the worlds alive."""

    def __init__(self) -> None:
        self._made: dict[tuple[int, str, str], tuple[EpisodeRuntime, Any, EpisodeRuntime]] = {}

    def run(self, world: EpisodeRuntime, call: Call) -> tuple[Any, EpisodeRuntime]:
        """(the output, the world after) of ``call`` run on a copy of ``world``."""
        key = (id(world), call.name, json.dumps(call.arguments, sort_keys=True, default=str))
        made = self._made.get(key)
        if made is None:
            after = world.offline_copy()
            made = self._made[key] = (world, after.execute(call), after)  # the world before, kept so its id stays its own
        return made[1], made[2]


def _run_on_copy(world: EpisodeRuntime, call: Call, memo: TrialWorlds | None) -> tuple[Any, EpisodeRuntime]:
    if memo is not None:
        return memo.run(world, call)
    after = world.offline_copy()
    return after.execute(call), after


def plan_turn(
    functions: Sequence[str],
    tools: dict[str, Tool],
    history: Sequence[HistoryCall],
    runtime: EpisodeRuntime,
    rng: random.Random,
    attempt: int = 0,
    *,
    optional_p: float,
    prefer_stated: frozenset[str] = frozenset(),
    same_turn: bool = True,
    call_tries: int = 4,
    upcoming: Sequence[str] = (),
    misfits: list[str] | None = None,
    memo: TrialWorlds | None = None,
) -> list[PlannedCall]:
    """Sources for every required argument of the turn's calls (and, each with probability
    ``optional_p``, optional ones the user could know). Functions in ``prefer_stated`` take
    from the user every value the user can state (a miss_params target needs one to leave out).

    An identifier nobody produced (no earlier output, not in the environment's state) has
    no source: the call could only fail, so planning fails.

    Each call is tried, as planned, on a copy of the world the turn's earlier calls have
    changed; a call the world refuses (an order already filled, a comment of another user,
    oneself to follow) is planned again, up to ``call_tries`` times, without the values it
    refused: the planner picks what the state allows, as a user who knows their world would.
    A call whose output a function in ``upcoming`` (the later turns') would take but the
    world then refuses is planned again too, stating its options (a limit order stays open
    for the cancellation the next turn asks for), as is one whose output a later call of the
    same turn would take and the world refuse (the availability of a doctor the patient has
    no appointment with, before a reschedule), and so is a call the previous turn made with
    the same arguments (nothing new to ask). ``misfits`` collects the calls left so for want of
    another choice (a caller may try another plan). ``memo``: trial worlds shared with the
    turn's other probes (:class:`TrialWorlds`)."""
    recent = list(reversed(history))
    previous = [h.call for h in recent if h.turn == recent[0].turn] if recent else []
    trial = runtime  # the world so far: read and copied from, never run on (each try runs on a copy of its own)
    outputs: dict[int, Any] = {}
    plan: list[PlannedCall] = []
    for j in range(len(functions)):
        refused: dict[str, list[Any]] = {}
        not_same: set[str] = set()
        best: tuple[int, PlannedCall, EpisodeRuntime, Any] | None = None
        boost = False
        for _ in range(call_tries):
            ctx = _CallPlanning(
                j, functions, tools, recent, runtime, rng, attempt, prefer_stated, same_turn, refused=refused, trial=trial,
                not_same_turn=not_same, options=boost, turn_plan=list(plan),
            )  # fmt: skip
            try:
                planned = plan_call(ctx, 1.0 if boost else optional_p)
            except PlanError:
                if best is None:
                    raise
                break  # nothing else to try: the best plan so far stands (its probe says why it fails)
            repeated = repeats(planned, outputs, tools, previous)
            output, refusal, world = try_call(planned, outputs, tools, trial, memo)
            # what the turn's later calls and the next turn's take from this output must be allowed by the world
            onward = [*functions[j + 1 :], *upcoming]
            later = later_refusal(planned, output, onward, tools, world) if refusal is None and output is not None else None
            later = later or (repeated if refusal is None else None)
            rank = 0 if refusal else 1 if later else 2
            if best is None or rank > best[0]:
                best = (rank, planned, world, output)
            if rank == 2:
                break
            boost = boost or bool(later and not repeated)  # what a later turn needs may be an option (a limit order that stays open)
            for param, value in (refusal or repeated or {}).items():
                refused.setdefault(param, []).append(value)
                if planned.arguments[param].kind == "same_turn":  # the nested value is refused: the user states one
                    not_same.add(param)
        assert best is not None
        rank, planned, world, output = best
        if rank < 2 and misfits is not None:  # executes, but the next turn or the turn before says otherwise
            misfits.append(planned.name)
        if output is not None:
            trial, outputs[j] = world, output
        plan.append(planned)
    return plan


def try_call(
    planned: PlannedCall, outputs: dict[int, Any], tools: dict[str, Tool], trial: EpisodeRuntime, memo: TrialWorlds | None = None
) -> tuple[Any, dict[str, Any] | None, EpisodeRuntime]:
    """Run a planned call on a copy of the trial world, and return the copy too: (its output,
    None, world) when it executes, (None, None, ``trial`` itself, not run on) when it waits for
    a same-turn output that never came or does not validate (nothing to choose otherwise; no
    copy is made), else (None, the refused values by parameter, world): those the error
    names, or every value the planner chose (stated or from an earlier turn) when it names none."""
    try:
        call = resolve_same_turn(planned, outputs, tools[planned.name].properties)
    except ValueError:
        return None, None, trial
    if call is None or validate_arguments(tools[call.name], call.arguments):
        return None, None, trial
    # a value a call of the turn gave is known only now: the world may refuse it (a name already in the address book)
    linked = {p: call.arguments[p] for p, s in planned.arguments.items() if s.kind == "same_turn" and p in call.arguments}
    others = {p: v for p, v in call.arguments.items() if p not in linked}
    refused = {p: v for p, v in linked.items() if not trial.accepts(call.name, p, v, others)}
    if refused:
        return None, refused, trial
    output, world = _run_on_copy(trial, call, memo)
    if not is_error(output):
        return output, None, world
    message = str(output["error"].get("message", ""))
    values = {p: call.arguments[p] for p in planned.arguments if p in call.arguments}
    named = {p: v for p, v in values.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v) in message}
    return None, named or {p: v for p, v in values.items() if planned.arguments[p].kind != "same_turn"} or values, world


def repeats(planned: PlannedCall, outputs: dict[int, Any], tools: dict[str, Tool], previous: Sequence[Call]) -> dict[str, Any] | None:
    """The values a call chose when it is, name and arguments, a call the previous turn made
    (the same conversion asked for again): to be chosen otherwise; else None."""
    try:
        call = resolve_same_turn(planned, outputs, tools[planned.name].properties)
    except ValueError:
        return None
    if call is None or not any(p.name == call.name and p.arguments == call.arguments for p in previous):
        return None
    return {p: s.value for p, s in planned.arguments.items() if s.kind != "same_turn" and s.value is not None} or None


def later_refusal(
    planned: PlannedCall, output: Any, upcoming: Sequence[str], tools: dict[str, Tool], world: EpisodeRuntime
) -> dict[str, Any] | None:
    """When a function of a later turn will take a value of this call's output that the world,
    as this call leaves it, refuses (the market order just placed is filled, but the next
    turn cancels it): the values this call chose (to be chosen otherwise); else None."""
    for name in dict.fromkeys(upcoming):
        tool = tools.get(name)
        if tool is None:
            continue
        for param in tool.required:
            found = find_in_outputs(param, tool.properties.get(param, {}), [output], set())
            if found is not None and is_identifier(param) and not world.accepts(name, param, found[1]):
                chosen = {p: s.value for p, s in planned.arguments.items() if s.kind != "same_turn" and s.value is not None}
                return chosen or None
    return None


def plan_call(ctx: _CallPlanning, optional_p: float) -> PlannedCall:
    """One call's sources: a same-turn output, else an earlier turn's output, else the user;
    then a conversion's units bound to the value converted."""
    tool = ctx.tool
    arguments: dict[str, ValueSource] = {}
    for param in params_to_plan(tool, ctx.rng, optional_p):
        schema = tool.properties.get(param, {})
        source = (
            same_turn_source(ctx, param, schema)
            or stated_in_turn(ctx, param, schema)
            or history_source(ctx, param, schema)
            or stated_source(ctx, param, schema)
        )
        if source is None:
            if param in tool.required:
                raise PlanError(f"{tool.name}: no value for required parameter '{param}'")
            continue
        arguments[param] = source
        if source.kind != "same_turn":
            ctx.chosen[param] = source.value
    align_with_identifiers(arguments, ctx)
    bind_conversion_units(arguments, ctx)
    return PlannedCall(name=tool.name, arguments=arguments)


def align_with_identifiers(arguments: dict[str, ValueSource], ctx: _CallPlanning) -> None:
    """A value taken from a listed object goes with the identifier taken from that list: paying
    the third bill takes the third bill's amount, not the second's. For each argument from an
    earlier turn that is no identifier, when an identifier argument of the call comes from the
    same turn and the object holding it has the same field, that object's value is taken."""
    for param, source in list(arguments.items()):
        if source.kind not in ("previous_turn", "earlier_turn") or is_identifier(param) or source.key is None:
            continue
        schema = ctx.tool.properties.get(param, {})
        for anchor, held in arguments.items():
            if anchor == param or held.kind != source.kind or held.call != source.call or not is_identifier(anchor) or held.key is None:
                continue
            sibling = _sibling_value(ctx, held, source.key)
            if sibling is not None and sibling != source.value and fits(sibling, schema) and not ctx.refusal(param)(sibling):
                arguments[param] = source.model_copy(update={"value": sibling})
                ctx.chosen[param] = sibling
            break


def _sibling_value(ctx: _CallPlanning, held: ValueSource, key: str) -> Any:
    """The value of ``key`` in the object of that turn's outputs that holds ``held``'s value."""
    for h in ctx.recent:
        if h.turn != held.call:
            continue
        for chain in _holders(acted_on(h), held.key, held.value):
            if key in chain[0] and not isinstance(chain[0][key], (dict, list)):
                return chain[0][key]
    return None


def params_to_plan(tool: Tool, rng: random.Random, optional_p: float) -> list[str]:
    """The required parameters, then each optional one with probability ``optional_p``: the
    choices among options first (an order_type before the limit_price it governs, whatever
    order the spec lists them in)."""
    optional = [p for p in tool.properties if p not in tool.required and rng.random() < optional_p]
    return [*tool.required, *sorted(optional, key=lambda p: "enum" not in tool.properties[p])]


def same_turn_source(ctx: _CallPlanning, param: str, schema: dict[str, Any]) -> ValueSource | None:
    """A field an earlier call of this turn promises for ``param`` (a nested call): by name,
    from the latest such call."""
    if not ctx.same_turn or param in ctx.not_same_turn:
        return None
    responses = [
        (i, ctx.tools[ctx.functions[i]].response) for i in range(ctx.index) if not _foreign_quantity(ctx, ctx.functions[i], schema)
    ]
    same = find_in_schemas(param, schema, responses, ctx.same_taken)
    if same is None or not (match_score(param, same[1]) >= 2.0 or same[0] == ctx.index - 1):
        return None
    ctx.same_taken.add(same)
    return ValueSource(kind="same_turn", key=same[1], call=same[0])


def stated_in_turn(ctx: _CallPlanning, param: str, schema: dict[str, Any]) -> ValueSource | None:
    """The identifier the user states for an earlier call of this turn, for the same parameter
    of a later one: "follow U-913025, then show me that user's posts" means U-913025's posts,
    not those of an id from the turn before."""
    if not is_identifier(param):
        return None
    for planned in reversed(ctx.turn_plan):
        source = planned.arguments.get(param)
        if source is not None and source.kind == "query" and fits(source.value, schema) and not ctx.refusal(param)(source.value):
            return source.model_copy()
    return None


def history_source(ctx: _CallPlanning, param: str, schema: dict[str, Any]) -> ValueSource | None:
    """A value of an earlier turn's output whose field agrees with ``param`` by name and
    quantity (most recent turn first). A retry varies the choice: another tied value
    (attempt 1), then the user's own value where the user could know it (attempt 2+), then
    any agreeing value of any earlier output (attempt 3+: the order the user just saw may be
    filled; one listed before is still open)."""
    if not ctx.recent:
        return None
    prefers_user = ctx.attempt >= 2 or ctx.tool.name in ctx.prefer_stated
    refused = ctx.refusal(param)
    if (
        prefers_user
        and not is_identifier(param)
        and user_value(param, schema, ctx.runtime, ctx.tool, ctx.rng, ctx.taken, strict=True, refused=refused)
    ):
        return None
    outputs = [acted_on(h) if not _foreign_quantity(ctx, h.call.name, schema) else {} for h in ctx.recent]
    found = find_in_outputs(
        param, schema, outputs, ctx.used, rng=ctx.rng if ctx.attempt >= 1 else None, wide=ctx.attempt >= 3, refused=refused
    )
    if found is None:
        return None
    turn = next(h.turn for h, out in zip(ctx.recent, outputs) if any(k == found[0] and v == found[1] for k, v in output_leaves(out)))
    ctx.used.add((found[0], json.dumps(found[1], sort_keys=True)))
    kind = "previous_turn" if turn == ctx.last_turn else "earlier_turn"
    return ValueSource(kind=kind, value=found[1], key=found[0], call=turn)


def _foreign_quantity(ctx: _CallPlanning, source: str, schema: dict[str, Any]) -> bool:
    """Whether a number from ``source`` would enter ``ctx.tool`` in a unit it did not choose:
    a converter's result is in the unit the user converted to (CHF), and an operation on an
    account or a device works in its own (the account's USD); only another conversion may
    take it further."""
    tool = ctx.tools.get(source)
    if tool is None or schema.get("type") not in ("number", "integer"):
        return False
    return conversion_params(tool) is not None and conversion_params(ctx.tool) is None


#: fields of an answer that only say whether an action worked
_OUTCOME_KEYS = frozenset({"success", "ok", "message", "status"})


def acted_on(h: HistoryCall) -> Any:
    """What a later call can take from an earlier one: its output, and, when the output only
    says whether the action worked (block_contact -> success, message), the scalar arguments
    it acted on too, so that unblocking takes the contact that was blocked, not another one."""
    out = h.output
    if isinstance(out, dict) and out and set(out) <= _OUTCOME_KEYS:
        given = {k: v for k, v in h.call.arguments.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
        return {**given, **out}
    return out


def stated_source(ctx: _CallPlanning, param: str, schema: dict[str, Any]) -> ValueSource | None:
    """A value the user states; an optional parameter only when the world gives the user one,
    or, on a later try, when it is a choice among the schema's options (write_mode 'overwrite')."""
    choice = "enum" in schema and (ctx.attempt >= 2 or ctx.options)
    if param not in ctx.tool.required and param not in ctx.runtime.user_values() and not choice:
        return None
    source = user_value(param, schema, ctx.runtime, ctx.tool, ctx.rng, ctx.taken, refused=ctx.refusal(param))
    if source is not None:
        ctx.taken.append(source.value)
    return source


# --------------------------------------------------------------------------- conversions

_SOURCE_SIDE = frozenset({"from", "source", "input", "base", "src", "original"})
_TARGET_SIDE = frozenset({"to", "target", "output", "dst", "desired"})
_UNIT_WORDS = frozenset({"unit", "units", "currency", "scale"})


def conversion_params(tool: Tool) -> tuple[str, str, str | None] | None:
    """(converted value, source unit, target unit) parameters of a converter, or None."""
    src = dst = None
    for p in tool.properties:
        toks = name_tokens(p)
        if len(toks) >= 2 and toks[-1] in _UNIT_WORDS:
            if toks[0] in _SOURCE_SIDE:
                src = p
            elif toks[0] in _TARGET_SIDE:
                dst = p
    values = [p for p, sch in tool.properties.items() if sch.get("type") in ("number", "integer") and p in tool.required]
    return (values[0], src, dst) if src and values else None


def _unit_keys(key: str) -> list[str]:
    """Where a value's unit sits beside it: '<key>_unit', '<first word>_unit', then 'unit'."""
    first = name_tokens(key)[0] if name_tokens(key) else key
    return [f"{key}_unit", f"{first}_unit", f"{key}_currency", "unit", "units", "currency"]


def _allowed(schema: dict[str, Any]) -> list[Any] | None:
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    return None


def _holders(node: Any, key: str, value: Any, ancestors: tuple[dict, ...] = ()) -> Iterator[tuple[dict, ...]]:
    """The chains of objects (innermost first) down to each object holding ``key: value``."""
    if isinstance(node, list):
        for v in node:
            yield from _holders(v, key, value, ancestors)
    elif isinstance(node, dict):
        chain = (node, *ancestors)
        held = node.get(key)
        if held == value or (isinstance(held, list) and value in held):
            yield chain
        for v in node.values():
            if isinstance(v, (dict, list)):
                yield from _holders(v, key, value, chain)


def unit_beside(output: Any, key: str, value: Any, allowed: list[Any] | None) -> tuple[str, Any] | None:
    """The unit stored with ``key: value`` (in its object, else the nearest enclosing one),
    among the values the converter allows."""
    for chain in _holders(output, key, value):
        for node in chain:
            for k in _unit_keys(key):
                if k in node and (allowed is None or node[k] in allowed):
                    return k, node[k]
    return None


def _schema_holders(node: Any, key: str, ancestors: tuple[dict, ...] = ()) -> Iterator[tuple[dict, ...]]:
    if not isinstance(node, dict):
        return
    props = node.get("properties") or {}
    chain = (props, *ancestors) if props else ancestors
    if key in props:
        yield chain
    for sub in props.values():
        yield from _schema_holders(sub, key, chain)
    if isinstance(node.get("items"), dict):
        yield from _schema_holders(node["items"], key, chain)


def unit_in_schema(response: dict[str, Any], key: str, allowed: list[Any] | None) -> tuple[str, list[Any] | None] | None:
    """The unit field a response schema promises with ``key`` (its object or an enclosing one),
    with its possible values when the schema says them."""
    for chain in _schema_holders(response, key):
        for props in chain:
            for k in _unit_keys(key):
                if k in props:
                    values = _allowed(props[k])
                    if allowed is None or values is None or set(map(str, values)) & set(map(str, allowed)):
                        return k, values
    return None


def bind_conversion_units(arguments: dict[str, ValueSource], ctx: _CallPlanning) -> None:
    """A conversion of an output value takes its source unit from that output (a Kelvin
    result is converted from kelvin), and never converts a unit into itself."""
    spec = conversion_params(ctx.tool)
    if spec is None or spec[0] not in arguments:
        return
    value_param, from_param, to_param = spec
    source = arguments[value_param]
    allowed = _allowed(ctx.tool.properties.get(from_param, {}))
    known: list[Any] | None = None
    if source.kind in ("previous_turn", "earlier_turn"):
        output = next(
            (h.output for h in ctx.recent if h.turn == source.call and unit_beside(h.output, source.key, source.value, allowed)), None
        )
        found = unit_beside(output, source.key, source.value, allowed) if output is not None else None
        if found is not None:
            arguments[from_param] = ValueSource(kind=source.kind, value=found[1], key=found[0], call=source.call)
            known = [found[1]]
    elif source.kind == "same_turn":
        found_schema = unit_in_schema(ctx.tools[ctx.functions[source.call]].response, source.key, allowed)
        if found_schema is not None:
            arguments[from_param] = ValueSource(kind="same_turn", key=found_schema[0], call=source.call)
            known = found_schema[1]
    if from_param in arguments and arguments[from_param].kind == "query":
        known = [arguments[from_param].value]
    target_options = _allowed(ctx.tool.properties.get(to_param, {})) if to_param else None
    target = arguments.get(to_param) if to_param else None
    if target is not None and known and target_options and target.kind == "query" and target.value in known:
        others = [u for u in target_options if u not in known]
        if others:
            arguments[to_param] = target.model_copy(update={"value": others[ctx.rng.randrange(len(others))]})


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
    return _with_copies(plan, k, copies)


def _with_copies(plan: Sequence[PlannedCall], k: int, copies: list[PlannedCall]) -> list[PlannedCall]:
    """The plan with call ``k`` replaced by its parallel copies; same-turn references past it move with them."""
    extra = len(copies) - 1

    def shifted(planned: PlannedCall) -> PlannedCall:
        moved = {
            p: s.model_copy(update={"call": s.call + extra}) if s.kind == "same_turn" and s.call > k else s
            for p, s in planned.arguments.items()
        }
        return planned.model_copy(update={"arguments": moved})

    return [*plan[:k], *copies, *[shifted(p) for p in plan[k + 1 :]]]


#: what a user asks for each of several things a list shows: look-ups, and the actions that
#: undo, mark or keep a thing ('cancel the first two of them'), never one that makes a new thing
FOR_EACH_VERBS = LOOKS | frozenset({"cancel", "delete", "remove", "mark", "archive", "like", "follow", "save", "download"})


def for_each_plan(
    plan: Sequence[PlannedCall], tools: dict[str, Tool], rng: random.Random, *, max_parallel: int, skip: frozenset[str] = frozenset()
) -> list[PlannedCall] | None:
    """The plan with a look-up made once for each of the first 2-3 elements of a list another
    call of the turn returns ("find flights to Tokyo and the details of the first two"): the
    copies take the first, second (and third) value of the field, side by side in one round.
    Only a look-up (get, check, track, ...; no conversion) or an action of ``FOR_EACH_VERBS``
    (cancel, delete, mark, ...) whose one same-turn argument sits in a list of that call's
    response, and which feeds no other call, is copied. None when the
    turn has no such call; a list shorter than the copies fails the plan's probe."""
    if max_parallel < 2:
        return None
    feeding = {d for p in plan for d in p.depends_on()}
    options = []
    for k, planned in enumerate(plan):
        tool = tools[planned.name]
        verb = name_tokens(planned.name)[:1]
        if k in feeding or planned.parallel or planned.name in skip or not verb or verb[0] not in FOR_EACH_VERBS or conversion_params(tool):
            continue
        linked = [(p, s) for p, s in planned.arguments.items() if s.kind == "same_turn"]
        if len(linked) != 1 or linked[0][0] not in tool.required:
            continue
        param, source = linked[0]
        if source.nth is None and source.call is not None and _in_list(tools[plan[source.call].name].response, source.key):
            options.append((k, param))
    if not options:
        return None
    k, param = options[rng.randrange(len(options))]
    base = plan[k]
    count = min(max_parallel, rng.choice((2, 3)))
    copies = [
        PlannedCall(
            name=base.name, arguments={**base.arguments, param: base.arguments[param].model_copy(update={"nth": i})}, parallel=param
        )
        for i in range(count)
    ]
    return _with_copies(plan, k, copies)


def probe_plan(plan: Sequence[PlannedCall], tools: dict[str, Tool], runtime: EpisodeRuntime, memo: TrialWorlds | None = None) -> str | None:
    """Run a plan on a copy of the runtime, round by round as forth-translation would: why
    it fails, or None when every call executes. Picking a plan that works before asking for
    a query spends no model call on a turn that cannot execute. With ``memo``, calls the
    planner already ran from the same world are not run again."""
    if memo is None:
        trial, memo = runtime.offline_copy(), None
    else:
        trial = runtime
    outputs: dict[int, Any] = {}
    rounds = plan_rounds(plan)
    for r in sorted(set(rounds)):
        ready = []
        for k in (k for k in range(len(plan)) if rounds[k] == r):
            try:
                call = resolve_same_turn(plan[k], outputs, tools[plan[k].name].properties)
            except ValueError as exc:
                return str(exc)
            if call is None:
                return "the plan's calls wait for each other"
            ready.append((k, call))
        for k, call in ready:
            problems = validate_arguments(tools[call.name], call.arguments)
            if problems:
                return "; ".join(problems)
            spec = conversion_params(tools[call.name])
            if spec and spec[2] and call.arguments.get(spec[1]) == call.arguments.get(spec[2]) is not None:
                return f"{call.name} would convert {call.arguments.get(spec[1])} into itself"
            if memo is None:
                output = trial.execute(call)
            else:
                output, trial = memo.run(trial, call)
            if is_error(output):
                return f"{call.name} returned an error: {output['error'].get('code')}: {output['error'].get('message')}"
            outputs[k] = output
    return None


_REF = {"previous_turn": "previous", "earlier_turn": "earlier", "same_turn": "same_turn", "query": "query"}


def _ordinal(history: Sequence[HistoryCall], source: ValueSource) -> str | None:
    """Which of several values of its field in the outputs of that turn a value is ('first',
    'second', 'third', 'last'), counted over all the turn's calls in their order (after parallel
    calls each output may hold one, the turn several: 'the account id you just got' would not
    say which); None when the turn gave only the one."""
    values: list[Any] = []
    for h in history:
        if h.turn != source.call:
            continue
        for k, v in output_leaves(h.output):
            if k == source.key and not isinstance(v, list) and v not in values:
                values.append(v)
    if source.value not in values or len(values) < 2:
        return None
    position = values.index(source.value)
    if position == len(values) - 1 and position > 2:
        return "last"
    return ("first", "second", "third")[position] if position < 3 else None


def _across(history: Sequence[HistoryCall], source: ValueSource) -> str | None:
    """Which of the values its field took in the earlier turns a value is, in time order
    ('first', 'second', 'latest'), when other turns gave other values of that field (two
    schedules created: 'the schedule id' alone does not say which); None when it is the only
    one, or the latest and the reference is to the turn just before ('the one you just found')."""
    key = singular_name(source.key or "")
    by_turn: dict[int, list[Any]] = {}
    for h in history:
        for k, v in output_leaves(acted_on(h)):
            if singular_name(k) == key and not isinstance(v, list):
                by_turn.setdefault(h.turn, []).append(v)
    values: list[Any] = []
    for turn in sorted(by_turn):
        values.extend(v for v in by_turn[turn] if v not in values)
    if len(values) < 2 or source.value not in values:
        return None
    position = values.index(source.value)
    if position == len(values) - 1:
        return None if source.kind == "previous_turn" else "latest"
    return ("first", "second", "third")[position] if position < 3 else None


def _in_list(response: dict[str, Any], key: str | None) -> bool:
    """Whether a response schema's field ``key`` sits in a list (several values may come back)."""

    def walk(node: Any, listed: bool) -> bool:
        if not isinstance(node, dict):
            return False
        props = node.get("properties") or {}
        if key in props:
            return listed or props[key].get("type") == "array"
        if any(walk(v, listed) for v in props.values()):
            return True
        return isinstance(node.get("items"), dict) and walk(node["items"], True)

    return key is not None and walk(response, False)


def function_requests(plan: Sequence[PlannedCall], tools: dict[str, Tool], history: Sequence[HistoryCall] = ()) -> list[FunctionRequest]:
    """One request per planned call; parallel calls of a function make one request that asks
    for each of their values. A call fed by another call of the turn is ``nested`` (the user
    states its goal, not the step); a reference to one of several values of its field says
    which ('the second flight')."""
    out: list[FunctionRequest] = []
    for k, planned in enumerate(plan):
        each = planned.parallel
        if each is not None and k > 0 and plan[k - 1].parallel == each and plan[k - 1].name == planned.name:
            out[-1].parallel.values.append(planned.arguments[each].value)
            continue
        stated = {p: s.value for p, s in planned.arguments.items() if s.kind == "query" and p != each}
        refs = {p: _REF[s.kind] for p, s in planned.arguments.items() if s.kind != "query" and p != each}
        ordinals = {
            p: o
            for p, s in planned.arguments.items()
            if s.kind in ("previous_turn", "earlier_turn") and p != each and (o := _ordinal(history, s)) is not None
        }
        across = {
            p: o
            for p, s in planned.arguments.items()
            if s.kind in ("previous_turn", "earlier_turn") and p != each and p not in ordinals and (o := _across(history, s)) is not None
        }
        for p, s in planned.arguments.items():  # a nested call takes the first of a list the call before returns
            if p == each:
                continue  # one call per element: the request says how many
            if s.kind == "same_turn" and s.call is not None and s.call < len(plan) and _in_list(tools[plan[s.call].name].response, s.key):
                ordinals[p] = "first"
        parallel = None
        if each is not None:
            parallel = ParallelValues(param=each, values=[planned.arguments[each].value], source=_REF[planned.arguments[each].kind])
        out.append(
            FunctionRequest(
                function=planned.name,
                description=tools[planned.name].description,
                values=stated,
                from_outputs=refs,
                parallel=parallel,
                nested=bool(planned.depends_on()),
                ordinals=ordinals,
                across=across,
            )  # fmt: skip
        )
    return out


# --------------------------------------------------------------------------- one episode
