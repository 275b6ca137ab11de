"""Multi-turn evaluation of checkpoints on held-out episodes (paper section 4: BFCL-v3
multi-turn and ToolQuery).

Every reference trajectory is replayed by every model **turn by turn on its own history**, as
BFCL's multi-turn runner does: the model sees the user turns of the reference, its own
earlier replies and the real outputs of its own calls (executed in a fresh
:class:`~magnet_lib.pool.execution.EpisodeRuntime` of the episode, same seed); greedy decoding,
one sample (:func:`magnet_lib.training.student.sample_episode`). Each turn is judged against the same
turn of the reference by the judge of the negative part (task ``judge_errors``: the offline
rules of :mod:`magnet_lib.training.error_judge`, or the LLM judge when a model is configured): correct, wrong
with an error type 1-5, or unusable (a malformed or cut-off reply, a function that is not
offered, an empty or garbled reply). A reply whose tool call does not parse or that is cut
by the token budget ends the conversation (there is no call to execute and no well-formed
history to go on from); the turns after it count as wrong, ``not reached``.

Metrics per model:

- **turn accuracy**: correct turns / turns;
- **episode success**: episodes whose every turn is correct (BFCL's multi-turn accuracy);
- **progress rate**: per episode, the share of turns correct before the first wrong one,
  averaged over episodes (ToolQuery's progress rate, with turns as the sub-goals).

Broken down by **kind** (:data:`KINDS`), from the episode the trajectory was translated from.
Turn kinds (a turn may have several): ``call`` a plain call turn, ``nested`` a turn where a
call needs the output of an earlier call of the same turn (Insert, short dependency, or a
merged chain), ``long_dependency`` a turn that needs a value from two or more turns back (or
an inserted long-dependency turn), ``miss_func`` / ``miss_params`` the split turns where the
model must say the function is missing or ask for a value. Turn accuracy of a kind counts its
turns; episode success and progress rate of a kind count the episodes holding such a turn, so
``miss_func``, ``miss_params`` and ``long_dependency`` read like BFCL's categories, and
``base`` is the episodes without a split turn (BFCL's base category).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from magnet_lib.models import (
    ERROR_TYPES,
    Episode,
    Message,
    Tool,
    Trajectory,
    stable_hash,
)
from magnet_lib.tables import from_frame
from magnet_lib.training.error_judge import (
    JudgeErrorsTask,
    JudgeVerdict,
    final_text,
    judge_turn,
    turn_calls,
)
from magnet_lib.training.reference import Reference, judge_item, match_references, runtime_tools
from magnet_lib.training.student import SampledTrajectory, Student, sample_episode

TURN_KINDS = ("call", "nested", "long_dependency", "miss_func", "miss_params")
#: Every breakdown of the report: all turns, BFCL's base category, and the turn kinds.
KINDS = ("all", "base", *TURN_KINDS)
METRICS = ("turn_accuracy", "episode_success", "progress_rate")


def turn_kinds(ref: Reference, index: int) -> list[str]:
    """The kinds of a reference turn, from the episode turn it was translated from."""
    label = ref.label(index)
    if label != "call":
        return [label]
    turn = ref.episode.turns[index] if len(ref.episode.turns) == len(ref.turns) else None
    if turn is None:
        return ["call"]
    sources = {where for per_call in turn.sources for where in per_call.values()}
    kinds = []
    if turn.op == "insert_short" or "same_turn" in sources:
        kinds.append("nested")
    if turn.op == "insert_long" or "earlier_turn" in sources:
        kinds.append("long_dependency")
    return kinds or ["call"]


def describe_response(messages: Sequence[Message], malformed: Sequence[str] = (), truncated: bool = False) -> str:
    """A turn's answer in one line: its calls in the call-string form, then its reply."""
    calls = [r.call.to_python() for r in turn_calls(messages)]
    text = final_text(messages)
    if text is None:  # the turn ended on a call or a cut-off reply
        text = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "assistant"), "")
    parts = []
    if calls:
        parts.append("[" + ", ".join(calls) + "]")
    if malformed:
        parts.append(f"(unparsable call: {malformed[0][:120]})")
    if text:
        parts.append(text.strip())
    if truncated:
        parts.append("(cut off by the token budget)")
    return " ".join(parts)[:400] or "(nothing)"


# --------------------------------------------------------------------------- results


@dataclass
class TurnResult:
    """One model's turn, judged."""

    model: str
    traj_id: str
    episode_id: str
    category: str
    variant: str
    turn_index: int
    kinds: list[str]
    correct: bool
    error_type: int | None
    reason: str
    query: str
    reference: str
    response: str
    reached: bool = True

    @property
    def unusable(self) -> bool:
        return self.reached and not self.correct and self.error_type is None


@dataclass
class MetricRow:
    model: str
    metric: str
    kind: str
    value: float
    n: int  # turns (turn accuracy, error counts) or episodes (success, progress) behind the value


def _episode_scores(turns: Sequence[TurnResult]) -> tuple[float, float]:
    """(success, progress rate) of one episode's judged turns, in turn order."""
    ordered = sorted(turns, key=lambda t: t.turn_index)
    before_error = next((i for i, t in enumerate(ordered) if not t.correct), len(ordered))
    return float(before_error == len(ordered)), before_error / len(ordered)


def compute_metrics(results: Sequence[TurnResult], models: Sequence[str]) -> list[MetricRow]:
    """Turn accuracy, episode success and progress rate per model and kind, and the counts
    of error types 1-5, unusable and not reached turns per model."""
    rows: list[MetricRow] = []
    for model in models:
        mine = [r for r in results if r.model == model]
        episodes: dict[str, list[TurnResult]] = {}
        for r in mine:
            episodes.setdefault(r.traj_id, []).append(r)
        for kind in KINDS:
            if kind == "all":
                turns, eps = mine, list(episodes.values())
            elif kind == "base":
                eps = [e for e in episodes.values() if not any({"miss_func", "miss_params"} & set(t.kinds) for t in e)]
                turns = [t for e in eps for t in e]
            else:
                turns = [t for t in mine if kind in t.kinds]
                eps = [e for e in episodes.values() if any(kind in t.kinds for t in e)]
            if not turns:
                continue
            scores = [_episode_scores(e) for e in eps]
            rows.append(MetricRow(model, "turn_accuracy", kind, sum(t.correct for t in turns) / len(turns), len(turns)))
            rows.append(MetricRow(model, "episode_success", kind, sum(s for s, _ in scores) / len(scores), len(scores)))
            rows.append(MetricRow(model, "progress_rate", kind, sum(p for _, p in scores) / len(scores), len(scores)))
        errors = Counter(r.error_type for r in mine if not r.correct and r.reached)
        for error_type in ERROR_TYPES:
            rows.append(MetricRow(model, f"error_type_{error_type}", "all", float(errors.get(error_type, 0)), len(mine)))
        rows.append(MetricRow(model, "unusable", "all", float(errors.get(None, 0)), len(mine)))
        rows.append(MetricRow(model, "not_reached", "all", float(sum(not r.reached for r in mine)), len(mine)))
    return rows


@dataclass
class EvalReport:
    """What the evaluation found: per-turn verdicts, metrics, and how the episodes were chosen."""

    models: list[str]
    turns: list[TurnResult]
    metrics: list[MetricRow]
    split: str = "heldout"
    episodes: list[str] = field(default_factory=list)
    judge: str = "offline"
    notes: list[str] = field(default_factory=list)

    def value(self, model: str, metric: str, kind: str = "all") -> float | None:
        return next((m.value for m in self.metrics if (m.model, m.metric, m.kind) == (model, metric, kind)), None)

    def frame(self) -> pl.DataFrame:
        """One row per model x metric x kind."""
        schema = {"model": pl.String, "metric": pl.String, "kind": pl.String, "value": pl.Float64, "n": pl.Int64}
        return pl.DataFrame([asdict(m) for m in self.metrics], schema=schema)

    def headline(self) -> dict[str, float]:
        """Overall turn accuracy, episode success and progress rate per model."""
        return {f"{model}/{metric}": float(self.value(model, metric) or 0.0) for model in self.models for metric in METRICS}

    def differing_turn(self, a: str, b: str) -> tuple[TurnResult, TurnResult] | None:
        """The first turn the two models are judged differently on (else answer differently)."""
        mine = {(r.traj_id, r.turn_index): r for r in self.turns if r.model == a}
        pairs = [(mine[(r.traj_id, r.turn_index)], r) for r in self.turns if r.model == b and (r.traj_id, r.turn_index) in mine]
        for x, y in pairs:
            if (x.correct, x.error_type) != (y.correct, y.error_type):
                return x, y
        return next(((x, y) for x, y in pairs if x.response != y.response), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "split": self.split,
            "episodes": self.episodes,
            "judge": self.judge,
            "notes": self.notes,
            "headline": self.headline(),
            "metrics": [asdict(m) for m in self.metrics],
            "turns": [{**asdict(t), "unusable": t.unusable} for t in self.turns],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False, default=str)

    # ------------------------------------------------------------------ markdown
    def _cell(self, model: str, metric: str, kind: str) -> str:
        v = self.value(model, metric, kind)
        return "-" if v is None else f"{v:.3f}"

    def _n(self, metric: str, kind: str) -> int:
        return next((m.n for m in self.metrics if m.metric == metric and m.kind == kind), 0)

    def summary_table(self) -> str:
        lines = [
            "| model | turn accuracy | episode success | progress rate | unusable turns | turns not reached |",
            "|---|---|---|---|---|---|",
        ]
        for model in self.models:
            unusable, unreached = int(self.value(model, "unusable") or 0), int(self.value(model, "not_reached") or 0)
            lines.append(
                f"| {model} | {self._cell(model, 'turn_accuracy', 'all')} | {self._cell(model, 'episode_success', 'all')} | "
                f"{self._cell(model, 'progress_rate', 'all')} | {unusable} | {unreached} |"
            )
        return "\n".join(lines)

    def markdown(self) -> str:
        kinds = [k for k in KINDS if self._n("turn_accuracy", k)]
        n_turns = self._n("turn_accuracy", "all")
        where = (
            "held-out multi-turn episodes (walks never trained on)"
            if self.split == "heldout"
            else "multi-turn episodes of the training data (no held-out ones)"
        )
        out = [
            "# Multi-turn evaluation",
            "",
            f"{len(self.episodes)} {where}, {n_turns} turns per model; greedy decoding, one sample; "
            f"calls executed for real; judge: {self.judge}.",
            "",
            *[f"> {note}" for note in self.notes],
            *([""] if self.notes else []),
            "## Overall",
            "",
            self.summary_table(),
            "",
            "## Turn accuracy by turn kind",
            "",
            "| model | " + " | ".join(f"{k} (n={self._n('turn_accuracy', k)})" for k in kinds) + " |",
            "|---|" + "---|" * len(kinds),
            *[f"| {m} | " + " | ".join(self._cell(m, "turn_accuracy", k) for k in kinds) + " |" for m in self.models],
            "",
            "## Episode success / progress rate by kind (episodes holding such a turn; base = no split turn)",
            "",
            "| model | " + " | ".join(f"{k} (n={self._n('episode_success', k)})" for k in kinds) + " |",
            "|---|" + "---|" * len(kinds),
            *[
                f"| {m} | "
                + " | ".join(f"{self._cell(m, 'episode_success', k)} / {self._cell(m, 'progress_rate', k)}" for k in kinds)
                + " |"
                for m in self.models
            ],
            "",
            "## Wrong turns by error type",
            "",
            "| model | " + " | ".join(f"{t}: {ERROR_TYPES[t].split(':')[0]}" for t in ERROR_TYPES) + " | unusable |",
            "|---|" + "---|" * (len(ERROR_TYPES) + 1),
            *[
                f"| {m} | "
                + " | ".join(str(int(self.value(m, f"error_type_{t}") or 0)) for t in ERROR_TYPES)
                + f" | {int(self.value(m, 'unusable') or 0)} |"
                for m in self.models
            ],
        ]
        if "sft" in self.models and "mdpo" in self.models:
            pair = self.differing_turn("sft", "mdpo")
            out += ["", "## A turn where SFT and mDPO differ", ""]
            if pair is None:
                out.append("None: both models answer every turn the same way.")
            else:
                x, y = pair
                out += [
                    f"Episode `{x.episode_id}` ({x.category}, {x.variant}), turn {x.turn_index} ({', '.join(x.kinds)}).",
                    "",
                    f"- **user**: {_md(x.query)}",
                    f"- **reference**: {_md(x.reference)}",
                    *[f"- **{r.model}**: {_md(r.response)} — {_verdict(r)}" for r in (x, y)],
                ]
        return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(r: TurnResult) -> str:
    if r.correct:
        return "correct"
    kind = f"error type {r.error_type}" if r.error_type else "unusable"
    return f"wrong ({kind}: {_md(r.reason)})"


# --------------------------------------------------------------------------- choosing episodes


def evaluation_references(
    sft_set: pl.DataFrame, episodes: Sequence[Episode], limit: int, seed: int = 0
) -> tuple[list[Reference], str, list[str]]:
    """The references to evaluate on: the held-out multi-turn rows of ``sft_set`` (walks never
    trained on); when there are none, multi-turn rows of the training split instead. At most
    ``limit``, chosen by a seeded hash (deterministic, spread over categories). Returns
    (references, split used, notes)."""
    multi = sft_set.filter(pl.col("kind") == "multi_turn") if "kind" in sft_set.columns else sft_set.clear()
    notes: list[str] = []
    split = "heldout"
    chosen = multi.filter(pl.col("split") == "heldout") if "split" in multi.columns else multi.clear()
    if chosen.height == 0:
        split = "train"
        chosen = multi
        notes.append(
            "sft_set has no held-out multi-turn rows: evaluated on multi-turn rows of the training split, "
            "which the checkpoints were trained on (raise distill.heldout_fraction for a real held-out set)"
        )
    keep = [c for c in chosen.columns if c in Trajectory.model_fields]
    trajectories = from_frame(chosen.select(keep), Trajectory)
    refs = match_references(episodes, trajectories)
    if len(refs) < len(trajectories):
        notes.append(f"{len(trajectories) - len(refs)} trajectories have no accepted episode in query_call_pairs and were left out")
    refs.sort(key=lambda r: stable_hash(["eval", seed, r.trajectory.traj_id]))
    if len(refs) > limit:
        notes.append(f"evaluated {limit} of {len(refs)} episodes (the cap: train.eval_episodes)")
        refs = refs[:limit]
    return sorted(refs, key=lambda r: r.trajectory.traj_id), split, notes


# --------------------------------------------------------------------------- evaluating


def judge_sample(
    sample: SampledTrajectory, ref: Reference, runner=None, judges: set[str] | None = None
) -> list[tuple[int, JudgeVerdict, str]]:
    """(turn index, verdict, judge) for every turn of a sample, against the reference; the
    judges that answered are added to ``judges``."""

    items = [judge_item(ref, t.index, sample.turn_messages(t.index), truncated=t.truncated, malformed=t.malformed) for t in sample.turns]
    if runner is None:
        out = [(t.index, judge_turn(item), "offline") for t, item in zip(sample.turns, items)]
    else:
        out = []
        for t, res in zip(sample.turns, runner.run(JudgeErrorsTask(), items)):
            verdict = res.value if res.ok else JudgeVerdict(correct=False, error_type=None, reason=f"judge failed: {res.reject_reason}")
            out.append((t.index, verdict, res.generator))
    if judges is not None:
        judges.update(judge for _, _, judge in out)
    return out


#: A model to evaluate: a student, or a function that loads one (loaded when its turn comes
#: and released after, so only one checkpoint is in memory at a time).
ModelSource = Student | Callable[[], Student]


def evaluate(
    models: Mapping[str, ModelSource],
    references: Sequence[Reference],
    pool: Mapping[str, Tool],
    runner=None,
    *,
    max_steps: int = 4,
    split: str = "heldout",
    notes: Sequence[str] = (),
) -> EvalReport:
    """Replay every reference with every model (greedy students: temperature 0), judge each
    turn, and compute the metrics. ``pool`` maps function names to tools (the episodes'
    worlds); ``runner`` runs the ``judge_errors`` task and, in LLM mode, simulates spec-only
    tools as translation did (None = the offline rules and the schema simulator);
    ``max_steps`` caps the model's responses per user turn. A model that fails to load is
    left out with a note."""
    results: list[TurnResult] = []
    judges: set[str] = set()
    notes = list(notes)
    evaluated: list[str] = []
    for name, source in models.items():
        try:
            student = source if hasattr(source, "respond") else source()
        except Exception as exc:  # a checkpoint that is missing or does not load
            notes.append(f"{name}: not evaluated, it could not be loaded ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        evaluated.append(name)
        for ref in references:
            tools = runtime_tools(ref, dict(pool))
            sample = sample_episode(student, ref.trajectory, tools, ref.seed, 1, max_steps=max_steps, runner=runner)[0]
            by_index = {t.index: t for t in sample.turns}
            verdicts = {index: verdict for index, verdict, _ in judge_sample(sample, ref, runner, judges)}
            for index, chat_turn in enumerate(ref.turns):
                turn = by_index.get(index)
                verdict = verdicts.get(index) or JudgeVerdict(
                    correct=False, reason=f"not reached: the conversation stopped at the unusable reply of turn {sample.turns[-1].index}"
                )
                results.append(
                    TurnResult(
                        model=name,
                        traj_id=ref.trajectory.traj_id,
                        episode_id=ref.episode.episode_id,
                        category=ref.trajectory.category,
                        variant=ref.episode.variant,
                        turn_index=index,
                        kinds=turn_kinds(ref, index),
                        correct=verdict.correct,
                        error_type=verdict.error_type,
                        reason=verdict.reason,
                        query=chat_turn.user.get("content") or "",
                        reference=describe_response(chat_turn.responses),
                        response=describe_response(sample.turn_messages(index), turn.malformed, turn.truncated)
                        if turn
                        else "(not reached)",
                        reached=turn is not None,
                    )
                )
        del student
    return EvalReport(
        models=evaluated,
        turns=results,
        metrics=compute_metrics(results, evaluated),
        split=split,
        episodes=[r.episode.episode_id for r in references],
        judge=", ".join(sorted(judges)) or "offline",
        notes=notes,
    )
