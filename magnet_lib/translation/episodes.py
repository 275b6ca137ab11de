"""Back-and-forth translation, turn by turn (paper section 3.3): augmented FSP -> Episode.

Each augmented FSP runs in a fresh, seeded :class:`~magnet_lib.pool.execution.EpisodeRuntime`.
For every turn:

1. **plan**: the source of every required argument is fixed up front (an output of an
   earlier call of the same turn, an earlier turn's output, or a value the user states);
   with probability ``distill.parallel_p`` a function with several values at hand for one
   argument is called 2-3 times side by side, once per value (parallel calls), and a look-up
   fed by a list another call of the turn returns is made for each of its first elements
   (at most ``graph.max_parallel_calls`` copies of a call; a turn makes its calls round by
   round, so it may hold more calls than its ``graph.max_calls_per_turn`` functions);
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

import json
import random
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from magnet_lib.llm.driver import Request, run_interleaved
from magnet_lib.llm.runner import TaskResult, TaskRunner
from magnet_lib.llm.task import Task
from magnet_lib.models import (
    OFFLINE,
    AugmentedFSP,
    Call,
    Episode,
    EpisodeTurn,
    FSPTurn,
    Tool,
    stable_hash,
)
from magnet_lib.pool.envs import is_error
from magnet_lib.pool.execution import EpisodeRuntime, make_runtime
from magnet_lib.pool.function_pool import validate_arguments
from magnet_lib.settings import MagnetSettings
from magnet_lib.translation.back_translation import (
    BACK_TRANSLATE,
    BackTranslateInput,
    MissingValue,
)
from magnet_lib.translation.forth_translation import (
    FORTH_TRANSLATE,
    ForthTranslateInput,
    PlannedCall,
)
from magnet_lib.translation.planner import (
    HistoryCall,
    PlanError,
    TrialWorlds,
    choose_offered,
    for_each_plan,
    function_requests,
    parallel_plan,
    plan_turn,
    probe_plan,
    tool_prompt_spec,
)

# Knobs of the method live in the settings (``distill.distractors``, ``distill.optional_p``,
# ``distill.plan_probes``); these only bound the size of a prompt:
#: at most this many earlier calls shown to forth-translation, each output cut to this length
HISTORY_CALLS = 12
OUTPUT_CHARS = 1500


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


@dataclass
class _TurnWork:
    """What translating one call turn starts from."""

    runtime: EpisodeRuntime
    call_turn: FSPTurn
    split: FSPTurn | None
    index: int
    history: list[HistoryCall]
    queries: list[str]
    offered: list[str]
    withheld: set[str]
    attempt: int
    feedback: str | None


class _TurnFailure(Exception):
    """Why a turn failed; ``fatal``: retrying from the same state cannot help."""

    def __init__(self, reason: str, fatal: bool = False):
        super().__init__(reason)
        self.fatal = fatal


def probe_optional_p(optional_p: float, probe_index: int) -> float:
    """How often a probe states optional values: as set for the first two probes, then more
    and more, so that a call that only works with an option (write_file's write_mode on an
    existing file, a limit order's price) is tried with it before the turn is given up."""
    return optional_p if probe_index < 2 else min(1.0, optional_p + 0.1 * probe_index)


def episode_id(fsp: AugmentedFSP) -> str:
    return f"ep-{stable_hash([fsp.fsp_id, fsp.seed])}"


class EpisodeTranslator:
    """Translates one augmented FSP; :meth:`run` is the generator the driver advances."""

    def __init__(
        self,
        fsp: AugmentedFSP,
        category_tools: Sequence[Tool],
        settings: MagnetSettings,
        tasks: dict[str, Task],
        runner: TaskRunner | None = None,
    ):
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
        """The paper's loop over the FSP's turns: for each (split and) call turn, plan,
        back-translate, forth-translate and execute (:meth:`_unit`), retried from the state
        before it; the first turn that cannot be translated rejects the episode."""
        fsp = self.fsp
        names = [f for t in fsp.turns for f in t.functions]
        distractors = self.settings.distill.distractors
        offered = choose_offered(names, self.category_tools, fsp.fsp_id, distractors) if all(n in self.tools for n in names) else []
        episode = Episode(
            episode_id=episode_id(fsp), fsp_id=fsp.fsp_id, parent_fsp_id=fsp.parent_fsp_id, category=fsp.category, variant=fsp.variant,
            seed=fsp.seed, tools=offered,
        )  # fmt: skip
        try:
            units = self._turn_units(names)
            withheld = self._withheld()
        except _TurnFailure as exc:
            return self._reject(episode, str(exc))
        runtime = make_runtime([self.tools[n] for n in offered], fsp.seed, self.runner)
        episode.initial_state = runtime.initial_state
        history: list[HistoryCall] = []
        queries: list[str] = []
        index = 0
        for split, call_turn in units:
            unit = _Unit(failure="not translated")
            for attempt in range(self.settings.distill.turn_retries + 1):
                snapshot = runtime.snapshot()
                work = _TurnWork(
                    runtime, call_turn, split, index, history, queries, offered, withheld, attempt, unit.failure if attempt else None
                )
                unit = yield from self._unit(work)
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

    def _turn_units(self, names: list[str]) -> list[tuple[FSPTurn | None, FSPTurn]]:
        """(split turn or None, call turn) pairs: a split turn goes with the call turn after it."""
        turns = self.fsp.turns
        unknown = sorted({n for n in names if n not in self.tools} | {t.target for t in turns if t.target and t.target not in self.tools})
        if unknown:
            raise _TurnFailure(f"unknown function(s) {', '.join(unknown)} (not in the category's pool)")
        units: list[tuple[FSPTurn | None, FSPTurn]] = []
        i = 0
        while i < len(turns):
            turn = turns[i]
            if turn.op == "split" or turn.label != "call":
                nxt = turns[i + 1] if i + 1 < len(turns) else None
                if nxt is None or nxt.label != "call" or not nxt.functions:
                    raise _TurnFailure(f"{turn.label}: the split turn has no call turn after it")
                if turn.target not in nxt.functions:
                    raise _TurnFailure(f"{turn.label}: target '{turn.target}' is not called in the turn after the split")
                units.append((turn, nxt))
                i += 2
            else:
                i += 1
                if not turn.functions:
                    raise _TurnFailure(f"turn {i - 1} has no functions")
                units.append((None, turn))
        return units

    def _withheld(self) -> set[str]:
        """The miss_func targets, withheld from the offered tools until their split turn."""
        withheld: set[str] = set()
        for k, turn in enumerate(self.fsp.turns):
            if turn.label == "miss_func" and turn.target:
                if any(turn.target in t.functions for t in self.fsp.turns[:k]):
                    raise _TurnFailure("miss_func: the target is called before the split turn")
                withheld.add(turn.target)
        return withheld

    _generator = OFFLINE

    def _ask(self, task: Task, item: BaseModel) -> Generator[Request, TaskResult, TaskResult]:
        result = yield (task, item)
        if result.ok and result.generator != OFFLINE:
            self._generator = result.generator
        return result

    def _parallel(
        self, plan: list[PlannedCall], history: list[HistoryCall], runtime: EpisodeRuntime, split: FSPTurn | None, key: str
    ) -> list[PlannedCall] | None:
        """The plan with parallel calls, each kind drawn with probability ``distill.parallel_p``:
        a look-up made for each of the first elements of a list another call of the turn
        returns (:func:`for_each_plan`), and a call made once per value when several are at
        hand (:func:`parallel_plan`); at most ``graph.max_parallel_calls`` copies of a call.
        A ``miss_params`` target stays a single call. None when neither applies."""
        rng = random.Random(f"parallel:{self.fsp.fsp_id}:{self.fsp.seed}:{key}")
        p, most = self.settings.distill.parallel_p, self.settings.graph.max_parallel_calls
        skip = frozenset({split.target}) if split is not None and split.label == "miss_params" and split.target else frozenset()
        wide: list[PlannedCall] | None = None
        if rng.random() < p:
            wide = for_each_plan(plan, self.tools, rng, max_parallel=most, skip=skip)
        for _ in range(self.settings.graph.max_calls_per_turn):  # each function of the turn may go parallel
            if rng.random() >= p:
                break
            base = wide or plan
            copied = skip | {c.name for c in base if c.parallel}
            more = parallel_plan(base, self.tools, history, runtime, rng, max_calls=len(base) + most - 1, skip=copied)
            if more is None:
                break
            wide = more
        return wide

    # ------------------------------------------------------------------ one turn: the paper's loop
    def _unit(self, work: _TurnWork) -> Generator[Request, TaskResult, _Unit]:
        """One call turn (with its split turn): plan, back-translate, forth-translate and execute."""
        try:
            plan = self._plan(work)
            missing = self._missing_value(work, plan)
            unit, queries = yield from self._back_translate(work, plan, missing)
            turn = yield from self._forth_translate(work, plan, queries, index=work.index + len(unit.turns))
        except _TurnFailure as failure:
            return _Unit(failure=str(failure), fatal=failure.fatal)
        unit.queries = queries
        unit.turns.append(turn)
        unit.calls = [HistoryCall(turn=turn.index, call=c, output=o) for c, o in zip(turn.calls, turn.outputs)]
        return unit

    def _plan(self, work: _TurnWork) -> list[PlannedCall]:
        """The first plan (parallel where drawn) whose calls all execute on a copy of the world,
        preferring one whose calls the next turn can go on from (else the first that executes)."""
        fsp = self.fsp
        failure = "no plan"
        split = work.split
        target = frozenset({split.target}) if split is not None and split.label == "miss_params" and split.target else frozenset()
        nested_failed = False
        fallback: list[PlannedCall] | None = None
        memo = TrialWorlds()  # the probes start from the same world: a call they repeat is run once
        for probe_index in range(self.settings.distill.plan_probes):
            misfits: list[str] = []
            plan_rng = random.Random(f"plan:{fsp.fsp_id}:{fsp.seed}:{work.index}:{work.attempt}:{probe_index}")
            try:
                candidate = plan_turn(
                    work.call_turn.functions, self.tools, work.history, work.runtime, plan_rng, work.attempt + probe_index,
                    optional_p=probe_optional_p(self.settings.distill.optional_p, probe_index), prefer_stated=target,
                    same_turn=not (probe_index % 2 and nested_failed), upcoming=self._upcoming(work.call_turn), misfits=misfits,
                    memo=memo,
                )  # fmt: skip
            except PlanError as exc:  # another probe may plan otherwise (with the same-turn outputs again, other values)
                failure = f"plan: {exc}"
                continue
            wide = self._parallel(candidate, work.history, work.runtime, work.split, f"{work.index}:{work.attempt}:{probe_index}")
            if wide is not None and probe_plan(wide, self.tools, work.runtime, memo) is None:
                if not misfits:
                    return wide
                fallback = fallback or wide
            failure = probe_plan(candidate, self.tools, work.runtime, memo)
            if failure is None:
                if not misfits:
                    return candidate
                # it runs, but leaves the next turn nothing it takes (a filled order to cancel): another probe may do better
                fallback = fallback or candidate
                continue
            # a same-turn output with no usable value (an empty cart): the next probe plans without one
            nested_failed = nested_failed or "has no usable value" in failure
        if fallback is not None:
            return fallback
        raise _TurnFailure(failure, fatal=True)

    def _upcoming(self, turn: FSPTurn) -> list[str]:
        """The functions of the call turn after ``turn`` (what its outputs must still allow)."""
        turns = self.fsp.turns
        later = turns[turns.index(turn) + 1 :]
        return next((t.functions for t in later if t.functions), [])

    def _missing_value(self, work: _TurnWork, plan: list[PlannedCall]) -> MissingValue | None:
        """miss_params: the required value of the target the split query leaves out."""
        split = work.split
        if split is None or split.label != "miss_params":
            return None
        target_plan = next(p for p in plan if p.name == split.target)
        stated = [p for p, s in target_plan.arguments.items() if s.kind == "query" and p in self.tools[split.target].required]
        if not stated:
            raise _TurnFailure("miss_params: every required value of the target comes from earlier outputs", fatal=True)
        rng = random.Random(f"turn:{self.fsp.fsp_id}:{self.fsp.seed}:{work.index}:{work.attempt}")
        param = stated[rng.randrange(len(stated))]
        prop = self.tools[split.target].properties.get(param, {})
        return MissingValue(
            function=split.target, param=param, value=target_plan.arguments[param].value, description=prop.get("description", "")
        )

    def _query(self, item: BackTranslateInput) -> Generator[Request, TaskResult, str]:
        result = yield from self._ask(self.back, item)
        if not result.ok:
            raise _TurnFailure(f"back_translate: {result.reject_reason}")
        return result.value.query

    def _back_translate(
        self, work: _TurnWork, plan: list[PlannedCall], missing: MissingValue | None
    ) -> Generator[Request, TaskResult, tuple[_Unit, list[str]]]:
        """Back-translation: the user's message(s) for the plan; a split turn gives two (the
        query that lacks a function or a value, then the follow-up that supplies it)."""
        history = work.history
        last_turn = history[-1].turn if history else None
        last_outputs = [{"function": h.call.name, "output": _cut(h.output)} for h in history if h.turn == last_turn]
        common = dict(
            category=self.fsp.category, requests=function_requests(plan, self.tools, history), last_outputs=last_outputs,
            avoid_names=self.avoid, attempt=work.attempt, feedback=work.feedback,
        )  # fmt: skip
        unit = _Unit()
        split = work.split
        if split is None:
            query = yield from self._query(BackTranslateInput(mode="request", previous_queries=list(work.queries), **common))
            return unit, [query]
        withheld_desc = self.tools[split.target].description if split.label == "miss_func" else None
        split_query = yield from self._query(
            BackTranslateInput(
                mode=f"split_{split.label}", missing=missing, withheld=withheld_desc, previous_queries=list(work.queries), **common
            )
        )
        resume = yield from self._query(
            BackTranslateInput(
                mode=f"resume_{split.label}", missing=missing, withheld=withheld_desc,
                previous_queries=[*work.queries, split_query], **common,
            )
        )  # fmt: skip
        unit.turns.append(EpisodeTurn(
            index=work.index, query=split_query, functions=[], op="split", label=split.label, target=split.target,
            missing=split.target if split.label == "miss_func" else missing.param,
            offered=[n for n in work.offered if n not in work.withheld],
        ))  # fmt: skip
        return unit, [split_query, resume]

    def _forth_translate(
        self, work: _TurnWork, plan: list[PlannedCall], queries: list[str], index: int
    ) -> Generator[Request, TaskResult, EpisodeTurn]:
        """Forth-translation, round by round, each round's calls executed before the next is
        asked for (a nested call sees the output it needs)."""
        split = work.split
        still_withheld = work.withheld - ({split.target} if split is not None and split.label == "miss_func" else set())
        turn_offered = [n for n in work.offered if n not in still_withheld]
        specs = [tool_prompt_spec(self.tools[n]) for n in dict.fromkeys(work.call_turn.functions)]
        history_prompt = [
            {"turn": h.turn, "function": h.call.name, "arguments": h.call.arguments, "output": _cut(h.output)}
            for h in work.history[-HISTORY_CALLS:]
        ]
        known = {k: v[:8] for k, v in work.runtime.user_values().items()}
        remaining = Counter(p.name for p in plan)
        done: list[dict[str, Any]] = []
        made: set[int] = set()
        turn = EpisodeTurn(
            index=index, query=queries[-1], functions=list(work.call_turn.functions), op=work.call_turn.op, label="call",
            offered=turn_offered,
        )  # fmt: skip
        for round_index in range(len(plan) + 1):
            if not +remaining:
                break
            item = ForthTranslateInput(
                queries=queries, functions=specs, history=history_prompt, done=[dict(d) for d in done], state_values=known,
                max_calls=self.settings.graph.max_calls_per_turn, attempt=work.attempt, feedback=work.feedback, plan=plan,
            )  # fmt: skip
            result = yield from self._ask(self.forth, item)
            if not result.ok:
                raise _TurnFailure(f"forth_translate: {result.reject_reason}")
            if result.value.finish:
                raise _TurnFailure(f"forth-translation finished before calling {', '.join(sorted(+remaining))}")
            for call in result.value.calls:
                output = self._execute(work.runtime, call, turn_offered)
                plan_index = _planned_index(plan, call, made)
                done.append(
                    {"function": call.name, "arguments": call.arguments, "output": output, "plan_index": plan_index, "round": round_index}
                )
                turn.calls.append(call)
                turn.outputs.append(output)
                turn.rounds.append(round_index)
                turn.sources.append(_sources(plan, plan_index, call))
                if remaining[call.name] > 0:
                    remaining[call.name] -= 1
        if +remaining:
            raise _TurnFailure(f"calls never made: {', '.join(sorted(+remaining))}")
        return turn

    def _execute(self, runtime: EpisodeRuntime, call: Call, offered: list[str]) -> Any:
        """Verify a call (offered, valid arguments) and execute it; an error output fails the turn."""
        if call.name not in offered:
            raise _TurnFailure(f"{call.name} is not offered in this turn")
        problems = validate_arguments(self.tools[call.name], call.arguments)
        if problems:
            raise _TurnFailure("; ".join(problems))
        output = runtime.execute(call)
        if is_error(output):
            err = output["error"]
            raise _TurnFailure(f"{call.name} returned an error: {err.get('code')}: {err.get('message')}")
        return output


def _planned_index(plan: list[PlannedCall], call: Call, made: set[int]) -> int | None:
    """The planned call a made call is (parallel calls differ in one value), else the first open
    one of its function; marked as made."""
    open_calls = [k for k, p in enumerate(plan) if p.name == call.name and k not in made]
    index = next(
        (k for k in open_calls if all(s.kind == "same_turn" or call.arguments.get(p) == s.value for p, s in plan[k].arguments.items())),
        open_calls[0] if open_calls else None,
    )
    if index is not None:
        made.add(index)
    return index


def _sources(plan: list[PlannedCall], plan_index: int | None, call: Call) -> dict[str, str]:
    """Per argument: where its value came from (the plan's source kind, or 'model' when the
    call's value is not the planned one)."""
    if plan_index is None:
        return {}
    planned = plan[plan_index].arguments
    out = {}
    for param, value in call.arguments.items():
        ps = planned.get(param)
        out[param] = ps.kind if ps is not None and (ps.kind == "same_turn" or ps.value == value) else "model"
    return out


def default_tasks() -> dict[str, Task]:
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
