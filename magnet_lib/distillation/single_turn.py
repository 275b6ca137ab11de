"""Single-turn and irrelevance data (paper section 3.6, post-processing).

Kinds of item, each one user query answered in one assistant turn:

- ``single``: one function, one call;
- ``parallel``: one function called with several argument sets in one message;
- ``multiple``: several different functions called in one message;
- ``irrelevance``: either no offered function fits the request (the assistant says what is
  missing, and calls nothing) or the request lacks a required value (the assistant asks).

Values are planned and probed like a translation turn (:mod:`magnet_lib.translation.episodes`); the
query comes from ``back_translate``, the closing text from ``teacher_turn``; every call
really executes in a fresh seeded runtime. The shares inside the single-turn kinds and of the
two irrelevance kinds are not stated in the paper: settings ``distill.single_shares`` and
``distill.irrelevance_shares``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Generator, Sequence
from typing import Any

from magnet_lib.distillation.teacher import (
    TEACHER_TURN,
    TeacherStepInput,
    default_teacher,
)
from magnet_lib.graph.dependency import REQUIRED_STATE, judge_pair, nested_reason, profile
from magnet_lib.graph.walk import user_start
from magnet_lib.llm.driver import Request, run_interleaved
from magnet_lib.llm.runner import TaskResult, TaskRunner
from magnet_lib.llm.task import Task
from magnet_lib.models import OFFLINE, Call, Tool, Trajectory, stable_hash
from magnet_lib.pool.envs import is_error
from magnet_lib.pool.execution import EpisodeRuntime, make_runtime
from magnet_lib.settings import MagnetSettings
from magnet_lib.training import chat_format as cf
from magnet_lib.translation.back_translation import (
    BACK_TRANSLATE,
    BackTranslateInput,
    MissingValue,
)
from magnet_lib.translation.forth_translation import PlannedCall, resolve_same_turn
from magnet_lib.translation.planner import (
    HistoryCall,
    PlanError,
    TrialWorlds,
    choose_offered,
    function_requests,
    plan_turn,
    probe_plan,
)


def item_counts(multi_turn_items: int, settings: MagnetSettings) -> dict[str, int]:
    """How many items of each kind a category makes for ``multi_turn_items`` multi-turn
    episodes, so that the SFT mix can hold its ratios."""
    d = settings.distill
    single_total = multi_turn_items * d.mix_single / max(d.mix_multi, 1e-9) * d.oversample
    irrelevance_total = multi_turn_items * d.mix_irrelevance / max(d.mix_multi, 1e-9) * d.oversample
    counts = {kind: math.ceil(single_total * share) for kind, share in d.single_shares.items()}
    counts.update({f"irrelevance_{kind}": math.ceil(irrelevance_total * share) for kind, share in d.irrelevance_shares.items()})
    return counts


def preparation_leads(tools: Sequence[Tool]) -> dict[str, list[str]]:
    """For an executable function that can only run on what another call makes (an id only an
    output gives, a state only an action makes: get_eta needs a trip that start_navigation
    starts), the calls that make it, as the walks would start there: run before the item,
    outside it, they make the world the user speaks of (a trip under way). From the offline
    judge, so it costs no model call; spec-only tools need none (their simulator accepts any id)."""
    executable = [t for t in tools if t.executable]
    profiles = {t.name: profile(t) for t in executable}
    needs: dict[str, list[str]] = {}
    state: dict[str, list[str]] = {}
    for src in executable:
        for dst in executable:
            if src.name == dst.name:
                continue
            verdict = judge_pair(profiles[src.name], profiles[dst.name])
            if verdict is None:
                continue
            if REQUIRED_STATE in verdict.evidence:
                state.setdefault(dst.name, []).append(src.name)
            elif nested_reason(profiles[src.name], profiles[dst.name], verdict):
                needs.setdefault(dst.name, []).append(src.name)
    leads = {}
    for name in sorted(set(needs) | set(state)):
        chain = user_start(name, needs, random.Random(f"lead:{name}"), 4, state)
        if len(chain) > 1:
            leads[name] = chain[:-1]
    return leads


class ItemMaker:
    """Makes one item of a kind for a category (:meth:`run` is the driver's generator)."""

    def __init__(
        self,
        kind: str,
        index: int,
        tools: Sequence[Tool],
        settings: MagnetSettings,
        tasks: dict[str, Task],
        runner: TaskRunner | None = None,
        leads: dict[str, list[str]] | None = None,
    ):
        self.kind = kind
        self.leads = leads or {}
        self.runner = runner  # simulates spec-only tools in LLM mode
        self.index = index
        self.tools = {t.name: t for t in tools}
        self.pool = list(tools)
        self.settings = settings
        self.back = tasks["back_translate"]
        self.teacher = tasks["teacher_turn"]
        self.category = self.pool[0].category if self.pool else ""
        self.key = f"{self.category}:{kind}:{index}:{settings.seed}"
        self.seed = int(stable_hash(["single_turn", self.key]), 16) % (2**31)
        self.generator = OFFLINE

    def _ask(self, task: Task, item: Any) -> Generator[Request, TaskResult, TaskResult]:
        result = yield (task, item)
        if result.ok and result.generator != OFFLINE:
            self.generator = result.generator
        return result

    # ------------------------------------------------------------------ choosing functions and plans
    def _functions(self, rng: random.Random, attempt: int) -> list[str]:
        """The item's function: items of a kind walk the category's functions in an order of
        their own (a seeded shuffle per kind), one function per item index, so n items of a
        kind use min(n, pool) distinct functions; a retry moves a third of the way on."""
        names = sorted((t.name for t in self.pool), key=lambda n: stable_hash(["single_turn_order", self.kind, self.category, n]))
        first = names[(self.index + attempt * (len(names) // 3 + 1)) % len(names)]
        if self.kind == "multiple":
            others = [n for n in names if n != first]
            return [first, *rng.sample(others, min(len(others), rng.choice([1, 2])))]
        return [first]

    def _prepared(self, offered: list[str], function: str, rng: random.Random) -> EpisodeRuntime | None:
        """A fresh world in which the calls that make what ``function`` acts on have run (not
        part of the item: the user speaks of the trip under way, the booking they hold)."""
        lead = self.leads[function]
        runtime = make_runtime([self.tools[n] for n in dict.fromkeys([*offered, *lead])], self.seed, self.runner)
        history: list[HistoryCall] = []
        for turn, name in enumerate(lead):
            try:
                planned = plan_turn(
                    [name], self.tools, history, runtime, random.Random(f"{self.key}:lead:{turn}:{rng.random()}"), optional_p=0.0
                )
            except PlanError:
                return None
            call = resolve_same_turn(planned[0], {}, self.tools[name].properties)
            output = runtime.execute(call) if call is not None else None
            if call is None or is_error(output):
                return None
            history.append(HistoryCall(turn=turn, call=call, output=output))
        return runtime

    def _plan(self, functions: list[str], runtime: EpisodeRuntime, rng: random.Random) -> list[PlannedCall] | None:
        """Independent calls (no call feeds another) that all execute."""
        optional_p = self.settings.distill.optional_p
        memo = TrialWorlds()  # every probe starts from the same world: a call tried before is not run again
        for probe in range(self.settings.distill.plan_probes):
            prng = random.Random(f"{self.key}:{probe}:{rng.random()}")
            try:
                if self.kind == "parallel":
                    copies = prng.choice([2, 3])
                    plan = [
                        plan_turn(functions, self.tools, [], runtime, prng, probe, optional_p=optional_p, memo=memo)[0]
                        for _ in range(copies)
                    ]
                    stated = [tuple(sorted((k, repr(v)) for k, v in p.stated().items())) for p in plan]
                    if not stated[0] or len(set(stated)) < len(stated):
                        continue  # parallel calls need different user-given values
                else:
                    plan = [plan_turn([f], self.tools, [], runtime, prng, probe, optional_p=optional_p, memo=memo)[0] for f in functions]
            except PlanError:
                return None
            if probe_plan(plan, self.tools, runtime, memo) is None:
                return plan
        return None

    # ------------------------------------------------------------------ the item
    def run(self) -> Generator[Request, TaskResult, Trajectory | None]:
        if not self.pool:
            return None
        for attempt in range(self.settings.distill.item_tries):
            rng = random.Random(f"{self.key}:{attempt}")
            functions = self._functions(rng, attempt)
            if self.kind == "irrelevance_no_fit":
                made = yield from self._no_fit(functions[0], rng)
            else:
                offered = choose_offered(functions, self.pool, f"{self.key}:{attempt}", self.settings.distill.distractors)
                runtime = make_runtime([self.tools[n] for n in offered], self.seed, self.runner)
                plan = self._plan(functions, runtime, rng)
                if plan is None and functions[0] in self.leads:  # make the world it acts on first, then try again
                    runtime = self._prepared(offered, functions[0], rng)
                    plan = self._plan(functions, runtime, rng) if runtime is not None else None
                if plan is None:
                    continue
                if self.kind == "irrelevance_missing_value":
                    made = yield from self._missing_value(plan, offered, rng)
                else:
                    made = yield from self._calls(plan, offered, runtime)
            if made is not None:
                return made
        return None

    def _trajectory(self, prefix: str, kind: str, messages: list[dict[str, Any]], offered: list[str], functions: list[str]) -> Trajectory:
        return Trajectory(
            traj_id=f"{prefix}-{stable_hash(['single_turn', self.key])}",
            kind=kind,  # type: ignore[arg-type]
            category=self.category,
            messages=messages,
            tools=[self.tools[n].openai_spec() for n in offered],
            functions=sorted(set(functions)),
            generator=self.generator,
        )

    def _query(self, item: BackTranslateInput) -> Generator[Request, TaskResult, str | None]:
        result = yield from self._ask(self.back, item)
        return result.value.query if result.ok else None

    def _calls(
        self, plan: list[PlannedCall], offered: list[str], runtime: EpisodeRuntime
    ) -> Generator[Request, TaskResult, Trajectory | None]:
        query = yield from self._query(
            BackTranslateInput(category=self.category, requests=function_requests(plan, self.tools), avoid_names=sorted(self.tools))
        )
        if query is None:
            return None
        calls: list[Call] = []
        for planned in plan:
            call = resolve_same_turn(planned, {}, self.tools[planned.name].properties)
            assert call is not None  # single-turn plans have no same-turn inputs
            calls.append(call)
        outputs = [runtime.execute(c) for c in calls]
        if any(is_error(o) for o in outputs):
            return None
        ids = [cf.call_id(0, k) for k in range(len(calls))]
        messages = [cf.system([self.tools[n].openai_spec() for n in offered]), cf.user(query), cf.assistant_calls(calls, ids)]
        messages += [cf.tool(c, i, o) for c, i, o in zip(calls, ids, outputs)]
        transcript = [
            {"role": "user", "content": f"{query}\n[Hint]: [{', '.join(c.to_python() for c in calls)}]"},
            {"role": "assistant", "content": "Answer: " + json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])},
            {
                "role": "user",
                "content": "\n".join(f"[Output of {c.name}]: {json.dumps(o, sort_keys=True)}" for c, o in zip(calls, outputs)),
            },
        ]
        done = [
            {"function": c.name, "description": self.tools[c.name].description, "arguments": c.arguments, "output": o}
            for c, o in zip(calls, outputs)
        ]
        result = yield from self._ask(self.teacher, TeacherStepInput(
            tools=[self.tools[n].openai_spec() for n in offered], transcript=transcript, expected="text", turn_outputs=done,
        ))  # fmt: skip
        if not result.ok:
            return None
        messages.append(cf.assistant_text(result.value.content))
        return self._trajectory(self.kind[:3], self.kind, messages, offered, [c.name for c in calls])

    def _no_fit(self, function: str, rng: random.Random) -> Generator[Request, TaskResult, Trajectory | None]:
        """A request for ``function`` while only functions of other classes are offered."""
        target = self.tools[function]
        unrelated = [t.name for t in self.pool if t.tool_class != target.tool_class] or [t.name for t in self.pool if t.name != function]
        if not unrelated:
            return None
        offered_set = set(rng.sample(unrelated, min(len(unrelated), rng.choice([2, 3, 4]))))
        offered = [t.name for t in self.pool if t.name in offered_set]
        runtime = make_runtime([target, *(self.tools[n] for n in offered)], self.seed, self.runner)
        plan = self._plan([function], runtime, rng)
        if plan is None:
            return None
        query = yield from self._query(BackTranslateInput(
            category=self.category, mode="split_miss_func", requests=function_requests(plan, self.tools),
            withheld=target.description, avoid_names=sorted(self.tools),
        ))  # fmt: skip
        if query is None:
            return None
        result = yield from self._ask(self.teacher, TeacherStepInput(
            tools=[self.tools[n].openai_spec() for n in offered], transcript=[{"role": "user", "content": f"{query}\n[Hint]: miss function"}],
            expected="text", label="miss_func", hint="miss function", target_description=target.description,
        ))  # fmt: skip
        if not result.ok:
            return None
        messages = [cf.system([self.tools[n].openai_spec() for n in offered]), cf.user(query), cf.assistant_text(result.value.content)]
        return self._trajectory("irr-nofit", "irrelevance", messages, offered, [function])

    def _missing_value(
        self, plan: list[PlannedCall], offered: list[str], rng: random.Random
    ) -> Generator[Request, TaskResult, Trajectory | None]:
        """A request that leaves out a required value the user must give."""
        planned = plan[0]
        target = self.tools[planned.name]
        stated = [p for p, s in planned.arguments.items() if s.kind == "query" and p in target.required]
        if not stated:
            return None
        param = stated[rng.randrange(len(stated))]
        prop = target.properties.get(param, {})
        missing = MissingValue(
            function=planned.name, param=param, value=planned.arguments[param].value, description=prop.get("description", "")
        )
        query = yield from self._query(BackTranslateInput(
            category=self.category, mode="split_miss_params", requests=function_requests(plan[:1], self.tools),
            missing=missing, avoid_names=sorted(self.tools),
        ))  # fmt: skip
        if query is None:
            return None
        result = yield from self._ask(self.teacher, TeacherStepInput(
            tools=[self.tools[n].openai_spec() for n in offered], transcript=[{"role": "user", "content": f"{query}\n[Hint]: missed params"}],
            expected="text", label="miss_params", hint="missed params", missing_param=param,
            missing_description=prop.get("description"), target_description=target.description,
        ))  # fmt: skip
        if not result.ok:
            return None
        messages = [cf.system([self.tools[n].openai_spec() for n in offered]), cf.user(query), cf.assistant_text(result.value.content)]
        return self._trajectory("irr-param", "irrelevance", messages, offered, [planned.name])


def default_tasks() -> dict[str, Task]:
    return {"back_translate": BACK_TRANSLATE, "teacher_turn": TEACHER_TURN}


def make_single_turn(
    category_tools: Sequence[Tool],
    counts: dict[str, int],
    settings: MagnetSettings,
    runner: TaskRunner,
    tasks: dict[str, Task] | None = None,
) -> tuple[list[Trajectory], dict[str, int]]:
    """Items of every kind for one category; also how many of each could not be made."""
    tasks = tasks or {**default_tasks()}
    tasks.setdefault("teacher_turn", default_teacher())
    leads = preparation_leads(category_tools)
    makers = [ItemMaker(kind, i, category_tools, settings, tasks, runner, leads) for kind, n in counts.items() for i in range(n)]
    made = run_interleaved([m.run() for m in makers], runner)
    failed: dict[str, int] = {}
    for maker, item in zip(makers, made):
        if item is None:
            failed[maker.kind] = failed.get(maker.kind, 0) + 1
    return [t for t in made if t is not None], failed
