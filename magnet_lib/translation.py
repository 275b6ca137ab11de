"""Back-and-forth translation, turn by turn (paper section 3.3): augmented FSP -> Episode.

Each augmented FSP runs in a fresh, seeded :class:`~magnet_lib.execution.EpisodeRuntime`.
For every turn:

1. **plan**: the source of every required argument is fixed up front (an output of an
   earlier call of the same turn, an earlier turn's output, or a value the user states);
   with probability ``distill.parallel_p`` a function with several values at hand for one
   argument is called 2-3 times side by side, once per value (parallel calls, within
   ``graph.max_calls_per_turn`` calls for the turn);
2. **back-translate** the turn into the user's query (stating the plan's user values);
3. **forth-translate** the query into calls, round by round: a nested call is asked for
   after the call it depends on has run, so it can use that output;
4. **verify**: every call validates against its schema and really executes without an error
   output. A failing turn is retried from the state before it (``turn_retries``), then the
   episode is rejected with the reason.

Split turns (``op='split'``) are translated together with the call turn after them, from one
plan: ``miss_func`` withholds the target function from the offered tools until the turn after
the split (where it is offered again: each turn records its ``offered`` tools);
``miss_params`` leaves a required value of the target out of the split query and the next
user message supplies it.

Episodes advance in lock-step: every episode is a generator that yields task requests; the
driver (:func:`run_interleaved`) sends all pending requests of one task to the runner at once,
so a model sees a batch of independent requests, never one at a time.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Sequence

from pydantic import BaseModel

from magnet_lib.back_translation import BackTranslateInput, FunctionRequest, MissingValue, ParallelValues
from magnet_lib.envs import is_error
from magnet_lib.execution import EpisodeRuntime, is_identifier_field, make_runtime, schema_user_values
from magnet_lib.forth_translation import (
    ForthTranslateInput,
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
from magnet_lib.llm.runner import TaskResult, TaskRunner
from magnet_lib.llm.task import Task
from magnet_lib.models import OFFLINE, AugmentedFSP, Call, Episode, EpisodeTurn, FSPTurn, Tool, stable_hash
from magnet_lib.pool import validate_arguments
from magnet_lib.settings import MagnetSettings

# Knobs of the method live in the settings (``distill.distractors``, ``distill.optional_p``,
# ``distill.plan_probes``); these only bound the size of a prompt:
#: at most this many earlier calls shown to forth-translation, each output cut to this length
HISTORY_CALLS = 12
OUTPUT_CHARS = 1500

Request = tuple[Task, BaseModel]


class PlanError(ValueError):
    """No value source for a required parameter."""


# --------------------------------------------------------------------------- driving many episodes


def run_interleaved(coroutines: Sequence[Generator[Request, TaskResult, Any]], runner: TaskRunner) -> list[Any]:
    """Run generators that yield ``(task, item)`` and receive the :class:`TaskResult`;
    each round sends every pending request of a task to ``runner.run`` in one batch.
    Returns each generator's return value, in order."""
    results: list[Any] = [None] * len(coroutines)
    pending: dict[int, Request] = {}

    def advance(index: int, value: TaskResult | None) -> None:
        gen = coroutines[index]
        try:
            pending[index] = gen.send(value) if value is not None else next(gen)
        except StopIteration as stop:
            pending.pop(index, None)
            results[index] = stop.value

    for i in range(len(coroutines)):
        advance(i, None)
    while pending:
        by_task: dict[str, list[int]] = {}
        tasks: dict[str, Task] = {}
        for index, (task, _) in pending.items():
            by_task.setdefault(task.name, []).append(index)
            tasks[task.name] = task
        for name, indices in by_task.items():
            outputs = runner.run(tasks[name], [pending[i][1] for i in indices])
            for index, output in zip(indices, outputs):
                advance(index, output)
    return results


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
    if tool.executable and is_identifier_field(param):
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
            from_history = recent and not (attempt >= 2 and not is_identifier_field(param) and user_value(param, schema, runtime, tool, rng, taken, strict=True))
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


def parallel_values(planned: PlannedCall, param: str, tool: Tool, history: Sequence[HistoryCall], runtime: EpisodeRuntime,
                    rng: random.Random) -> list[Any]:
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
    output = next((h.output for h in reversed(history) if h.turn == source.call and (source.key, source.value) in output_leaves(h.output)), None)
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
        PlannedCall(name=base.name, arguments={**base.arguments, param: base.arguments[param].model_copy(update={"value": v})}, parallel=param)
        for v in values[:count]
    ]

    def shifted(planned: PlannedCall) -> PlannedCall:  # same-turn references past the copies move with them
        moved = {p: s.model_copy(update={"call": s.call + count - 1}) if s.kind == "same_turn" and s.call > k else s for p, s in planned.arguments.items()}
        return planned.model_copy(update={"arguments": moved})

    return [*plan[:k], *copies, *[shifted(p) for p in plan[k + 1:]]]


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
        out.append(FunctionRequest(function=planned.name, description=tools[planned.name].description, values=stated, from_outputs=refs, parallel=parallel))
    return out


# --------------------------------------------------------------------------- one episode


def _cut(output: Any) -> Any:
    text = json.dumps(output, ensure_ascii=False, sort_keys=True)
    return output if len(text) <= OUTPUT_CHARS else text[:OUTPUT_CHARS] + "…"


@dataclass
class _Unit:
    """The result of translating one call turn (with its split turn, if any)."""

    turns: list[EpisodeTurn] = field(default_factory=list)
    calls: list[HistoryCall] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    failure: str | None = None
    fatal: bool = False


def episode_id(fsp: AugmentedFSP) -> str:
    return f"ep-{stable_hash([fsp.fsp_id, fsp.seed])}"


class EpisodeTranslator:
    """Translates one augmented FSP; :meth:`run` is the generator the driver advances."""

    def __init__(self, fsp: AugmentedFSP, category_tools: Sequence[Tool], settings: MagnetSettings, tasks: dict[str, Task],
                 runner: TaskRunner | None = None):
        self.fsp = fsp
        self.runner = runner  # simulates spec-only tools in LLM mode
        self.tools = {t.name: t for t in category_tools}
        self.category_tools = list(category_tools)
        self.settings = settings
        self.back = tasks["back_translate"]
        self.forth = tasks["forth_translate"]
        self.avoid = sorted(self.tools)

    def _reject(self, episode: Episode, reason: str) -> Episode:
        episode.status = "rejected"
        episode.reject_reason = reason
        return episode

    def run(self) -> Generator[Request, TaskResult, Episode]:
        fsp = self.fsp
        names = [f for t in fsp.turns for f in t.functions]
        distractors = self.settings.distill.distractors
        offered = choose_offered(names, self.category_tools, fsp.fsp_id, distractors) if all(n in self.tools for n in names) else []
        episode = Episode(
            episode_id=episode_id(fsp), fsp_id=fsp.fsp_id, parent_fsp_id=fsp.parent_fsp_id, category=fsp.category, variant=fsp.variant,
            seed=fsp.seed, tools=offered,
        )  # fmt: skip
        unknown = sorted({n for n in names if n not in self.tools} | {t.target for t in fsp.turns if t.target and t.target not in self.tools})
        if unknown:
            return self._reject(episode, f"unknown function(s) {', '.join(unknown)} (not in the category's pool)")
        runtime = make_runtime([self.tools[n] for n in offered], fsp.seed, self.runner)
        episode.initial_state = runtime.initial_state
        withheld: set[str] = set()
        for k, turn in enumerate(fsp.turns):
            if turn.label == "miss_func" and turn.target:
                if any(turn.target in t.functions for t in fsp.turns[:k]):
                    return self._reject(episode, "miss_func: the target is called before the split turn")
                withheld.add(turn.target)
        history: list[HistoryCall] = []
        queries: list[str] = []
        index = 0
        i = 0
        while i < len(fsp.turns):
            turn = fsp.turns[i]
            split: FSPTurn | None = None
            if turn.op == "split" or turn.label != "call":
                nxt = fsp.turns[i + 1] if i + 1 < len(fsp.turns) else None
                if nxt is None or nxt.label != "call" or not nxt.functions:
                    return self._reject(episode, f"{turn.label}: the split turn has no call turn after it")
                if turn.target not in nxt.functions:
                    return self._reject(episode, f"{turn.label}: target '{turn.target}' is not called in the turn after the split")
                split, call_turn, i = turn, nxt, i + 2
            else:
                call_turn, i = turn, i + 1
            if not call_turn.functions:
                return self._reject(episode, f"turn {i - 1} has no functions")
            unit = _Unit(failure="not translated")
            for attempt in range(self.settings.distill.turn_retries + 1):
                snapshot = copy.deepcopy(runtime)
                unit = yield from self._unit(
                    runtime, call_turn, split, index, history, queries, offered, withheld, attempt, unit.failure if attempt else None
                )
                if unit.failure is None:
                    break
                runtime = snapshot
                if unit.fatal:
                    break
            if unit.failure is not None:
                where = f"turn {index}" + (f" ({split.label})" if split else "")
                return self._reject(episode, f"{where}: {unit.failure}")
            episode.turns.extend(unit.turns)
            history.extend(unit.calls)
            queries.extend(unit.queries)
            if split is not None and split.label == "miss_func":
                withheld.discard(split.target)
            index += len(unit.turns)
        episode.notes = list(runtime.notes)
        episode.generator = self._generator
        return episode

    _generator = OFFLINE

    def _ask(self, task: Task, item: BaseModel) -> Generator[Request, TaskResult, TaskResult]:
        result = yield (task, item)
        if result.ok and result.generator != OFFLINE:
            self._generator = result.generator
        return result

    def _parallel(self, plan: list[PlannedCall], history: list[HistoryCall], runtime: EpisodeRuntime, split: FSPTurn | None,
                  key: str) -> list[PlannedCall] | None:
        """With probability ``distill.parallel_p``, the plan with parallel calls (if a call
        has several values at hand); a ``miss_params`` target stays a single call."""
        rng = random.Random(f"parallel:{self.fsp.fsp_id}:{self.fsp.seed}:{key}")
        if rng.random() >= self.settings.distill.parallel_p:
            return None
        skip = frozenset({split.target}) if split is not None and split.label == "miss_params" and split.target else frozenset()
        return parallel_plan(plan, self.tools, history, runtime, rng, max_calls=self.settings.graph.max_calls_per_turn, skip=skip)

    def _unit(
        self,
        runtime: EpisodeRuntime,
        call_turn: FSPTurn,
        split: FSPTurn | None,
        index: int,
        history: list[HistoryCall],
        queries: list[str],
        offered: list[str],
        withheld: set[str],
        attempt: int,
        feedback: str | None,
    ) -> Generator[Request, TaskResult, _Unit]:
        fsp = self.fsp
        rng = random.Random(f"turn:{fsp.fsp_id}:{fsp.seed}:{index}:{attempt}")
        plan: list[PlannedCall] | None = None
        failure = "no plan"
        for probe_index in range(self.settings.distill.plan_probes):
            plan_rng = random.Random(f"plan:{fsp.fsp_id}:{fsp.seed}:{index}:{attempt}:{probe_index}")
            try:
                candidate = plan_turn(call_turn.functions, self.tools, history, runtime, plan_rng, attempt + probe_index,
                                      optional_p=self.settings.distill.optional_p)
            except PlanError as exc:
                failure = f"plan: {exc}"
                break
            wide = self._parallel(candidate, history, runtime, split, f"{index}:{attempt}:{probe_index}")
            if wide is not None and probe_plan(wide, self.tools, runtime) is None:
                plan = wide
                break
            failure = probe_plan(candidate, self.tools, runtime)
            if failure is None:
                plan = candidate
                break
        if plan is None:
            return _Unit(failure=failure, fatal=True)
        requests = function_requests(plan, self.tools)
        last_turn = history[-1].turn if history else None
        last_outputs = [{"function": h.call.name, "output": _cut(h.output)} for h in history if h.turn == last_turn]
        common = dict(category=fsp.category, requests=requests, last_outputs=last_outputs, avoid_names=self.avoid, attempt=attempt, feedback=feedback)
        missing: MissingValue | None = None
        unit = _Unit()
        if split is not None and split.label == "miss_params":
            target_plan = next(p for p in plan if p.name == split.target)
            stated = [p for p, s in target_plan.arguments.items() if s.kind == "query" and p in self.tools[split.target].required]
            if not stated:
                return _Unit(failure="miss_params: every required value of the target comes from earlier outputs", fatal=True)
            param = stated[rng.randrange(len(stated))]
            prop = self.tools[split.target].properties.get(param, {})
            missing = MissingValue(function=split.target, param=param, value=target_plan.arguments[param].value, description=prop.get("description", ""))
        if split is not None:
            withheld_desc = self.tools[split.target].description if split.label == "miss_func" else None
            result = yield from self._ask(self.back, BackTranslateInput(mode=f"split_{split.label}", missing=missing, withheld=withheld_desc, previous_queries=list(queries), **common))
            if not result.ok:
                return _Unit(failure=f"back_translate: {result.reject_reason}")
            split_query = result.value.query
            result = yield from self._ask(self.back, BackTranslateInput(mode=f"resume_{split.label}", missing=missing, withheld=withheld_desc, previous_queries=[*queries, split_query], **common))
            if not result.ok:
                return _Unit(failure=f"back_translate: {result.reject_reason}")
            now = [split_query, result.value.query]
            split_offered = [n for n in offered if n not in withheld]
            unit.turns.append(EpisodeTurn(
                index=index, query=split_query, functions=[], op="split", label=split.label, target=split.target,
                missing=split.target if split.label == "miss_func" else missing.param, offered=split_offered,
            ))  # fmt: skip
        else:
            result = yield from self._ask(self.back, BackTranslateInput(mode="request", previous_queries=list(queries), **common))
            if not result.ok:
                return _Unit(failure=f"back_translate: {result.reject_reason}")
            now = [result.value.query]
        unit.queries = now
        turn_index = index + len(unit.turns)
        still_withheld = withheld - ({split.target} if split is not None and split.label == "miss_func" else set())
        turn_offered = [n for n in offered if n not in still_withheld]
        specs = [tool_prompt_spec(self.tools[n]) for n in dict.fromkeys(call_turn.functions)]
        history_prompt = [{"turn": h.turn, "function": h.call.name, "arguments": h.call.arguments, "output": _cut(h.output)} for h in history[-HISTORY_CALLS:]]
        known = {k: v[:8] for k, v in runtime.user_values().items()}
        remaining = Counter(p.name for p in plan)
        done: list[dict[str, Any]] = []
        made: set[int] = set()
        calls: list[Call] = []
        outputs: list[Any] = []
        rounds: list[int] = []
        sources: list[dict[str, str]] = []
        for round_index in range(len(plan) + 1):
            if not +remaining:
                break
            item = ForthTranslateInput(
                queries=now, functions=specs, history=history_prompt, done=[dict(d) for d in done], state_values=known,
                max_calls=self.settings.graph.max_calls_per_turn, attempt=attempt, feedback=feedback, plan=plan,
            )  # fmt: skip
            result = yield from self._ask(self.forth, item)
            if not result.ok:
                return _Unit(failure=f"forth_translate: {result.reject_reason}")
            answer = result.value
            if answer.finish:
                return _Unit(failure=f"forth-translation finished before calling {', '.join(sorted(+remaining))}")
            for call in answer.calls:
                if call.name not in turn_offered:
                    return _Unit(failure=f"{call.name} is not offered in this turn")
                problems = validate_arguments(self.tools[call.name], call.arguments)
                if problems:
                    return _Unit(failure="; ".join(problems))
                output = runtime.execute(call)
                if is_error(output):
                    err = output["error"]
                    return _Unit(failure=f"{call.name} returned an error: {err.get('code')}: {err.get('message')}")
                open_calls = [k for k, p in enumerate(plan) if p.name == call.name and k not in made]
                plan_index = next(  # the planned call with these values (parallel calls differ in one), else the first open one
                    (k for k in open_calls if all(s.kind == "same_turn" or call.arguments.get(p) == s.value for p, s in plan[k].arguments.items())),
                    open_calls[0] if open_calls else None,
                )
                source = {}
                if plan_index is not None:
                    made.add(plan_index)
                    planned = plan[plan_index].arguments
                    for param, value in call.arguments.items():
                        ps = planned.get(param)
                        source[param] = ps.kind if ps is not None and (ps.kind == "same_turn" or ps.value == value) else "model"
                done.append({"function": call.name, "arguments": call.arguments, "output": output, "plan_index": plan_index, "round": round_index})
                calls.append(call)
                outputs.append(output)
                rounds.append(round_index)
                sources.append(source)
                if remaining[call.name] > 0:
                    remaining[call.name] -= 1
        if +remaining:
            return _Unit(failure=f"calls never made: {', '.join(sorted(+remaining))}")
        unit.turns.append(EpisodeTurn(
            index=turn_index, query=now[-1], functions=list(call_turn.functions), calls=calls, outputs=outputs,
            op=call_turn.op, label="call", offered=turn_offered, rounds=rounds, sources=sources,
        ))  # fmt: skip
        unit.calls = [HistoryCall(turn=turn_index, call=c, output=o) for c, o in zip(calls, outputs)]
        return unit


def default_tasks() -> dict[str, Task]:
    from magnet_lib.tasks.translation import BACK_TRANSLATE, FORTH_TRANSLATE

    return {"back_translate": BACK_TRANSLATE, "forth_translate": FORTH_TRANSLATE}


def translate(
    fsps: Sequence[AugmentedFSP],
    category_tools: Sequence[Tool],
    settings: MagnetSettings,
    runner: TaskRunner,
    tasks: dict[str, Task] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Episode]:
    """Every augmented FSP of a category translated into an Episode (or a reject)."""
    tasks = tasks or default_tasks()
    translators = [EpisodeTranslator(f, category_tools, settings, tasks, runner) for f in fsps]
    return run_interleaved([t.run() for t in translators], runner)
