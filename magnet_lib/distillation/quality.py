"""The data quality report of the SFT set: numbers for Dagster metadata and a markdown file.

- items per kind and split;
- turns and calls per multi-turn item (the paper's multi-turn SFT items average 4.71 turns
  and 15.13 calls);
- the share of nested, parallel (one function called several times in one round),
  long-dependency, ``miss_func`` and ``miss_params`` turns (from the episodes the multi-turn
  items came from);
- executability: the share of calls whose tool output is not an error (must be 100%);
- the duplicate rate of the mix;
- translation rejects by reason;
- one full example rendered as a conversation.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from magnet_lib.distillation.mixing import MixReport, SFTExample, mix_shares
from magnet_lib.lint.report import LintReport
from magnet_lib.models import Episode, EpisodeTurn
from magnet_lib.pool.envs import is_error
from magnet_lib.training import chat_format as cf

PAPER_TURNS_PER_ITEM = 4.71
PAPER_CALLS_PER_ITEM = 15.13


def reason_class(reason: str) -> str:
    """A reject reason without its particulars (ids, values, turn numbers), so that
    reasons group: "turn 3: pay_bill returned an error: overpayment: ..." ->
    "pay_bill returned an error: overpayment"."""
    text = re.sub(r"^turn \d+( \(\w+\))?: ", "", reason)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "…", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    parts = text.split(": ")
    return ": ".join(parts[:3])[:100]


def executability(rows: Sequence[SFTExample]) -> tuple[int, int]:
    """(calls whose tool message is not an error, all calls) over the rows."""
    ok = total = 0
    for r in rows:
        for m in r.messages:
            if m.get("role") == "tool":
                total += 1
                try:
                    ok += not is_error(json.loads(m.get("content") or "null"))
                except json.JSONDecodeError:
                    ok += 1  # a text output is not an error output
    return ok, total


class QualityReport(BaseModel):
    items_by_kind: dict[str, dict[str, int]] = Field(default_factory=dict, description="split -> kind -> items")
    mix_shares: dict[str, float] = Field(default_factory=dict)
    mix_targets: dict[str, float] = Field(default_factory=dict)
    multi_turn_items: int = 0
    turns_per_item: float = 0.0
    calls_per_item: float = 0.0
    turn_shares: dict[str, float] = Field(default_factory=dict, description="nested, parallel, long_dependency, miss_func, miss_params")
    executable_calls: int = 0
    calls: int = 0
    duplicate_rate: float = 0.0
    mix: dict[str, Any] = Field(default_factory=dict)
    episodes: int = 0
    rejected_episodes: int = 0
    rejects_by_reason: dict[str, int] = Field(default_factory=dict)
    example_id: str | None = None
    example: str = ""
    lint: list[dict[str, Any]] = Field(
        default_factory=list, description="The data lint's figures with a threshold: count, total, share, threshold, passed, blocking."
    )

    @property
    def executability(self) -> float:
        return self.executable_calls / self.calls if self.calls else 1.0

    def metadata(self) -> dict[str, Any]:
        """Flat numbers for Dagster metadata (the asset wraps dicts as JSON)."""
        return {
            "items_by_kind": self.items_by_kind,
            "mix_shares": {k: round(v, 4) for k, v in self.mix_shares.items()},
            "multi_turn/turns_per_item": round(self.turns_per_item, 3),
            "multi_turn/calls_per_item": round(self.calls_per_item, 3),
            "turn_shares": {k: round(v, 4) for k, v in self.turn_shares.items()},
            "executability": round(self.executability, 6),
            "duplicate_rate": round(self.duplicate_rate, 4),
            "rejected_episodes": self.rejected_episodes,
            "rejects_by_reason": self.rejects_by_reason,
            **{f"lint/{r['figure']}": r["share"] for r in self.lint if r["total"]},
            **({"lint_failed": sorted(r["figure"] for r in self.lint if r["passed"] is False)} if self.lint else {}),
        }

    def to_markdown(self) -> str:
        lines = ["# Magnet SFT set: data quality report", ""]
        lines += ["## Items per kind", "", "| split | kind | items |", "|---|---|---|"]
        for split, kinds in self.items_by_kind.items():
            lines += [f"| {split} | {k} | {n} |" for k, n in sorted(kinds.items())]
        lines += ["", "Mix of the train split (target from the settings):", "", "| bucket | share | target |", "|---|---|---|"]
        total_target = sum(self.mix_targets.values()) or 1.0
        for k, v in self.mix_shares.items():
            lines.append(f"| {k} | {v:.1%} | {self.mix_targets.get(k, 0) / total_target:.1%} |")
        lines += [
            "",
            "## Multi-turn items",
            "",
            f"- items: {self.multi_turn_items}",
            f"- user turns per item: {self.turns_per_item:.2f} (paper: {PAPER_TURNS_PER_ITEM})",
            f"- calls per item: {self.calls_per_item:.2f} (paper: {PAPER_CALLS_PER_ITEM})",
        ]
        lines += [f"- share of {k.replace('_', ' ')} turns: {v:.1%}" for k, v in self.turn_shares.items()]
        lines += [
            "",
            "## Verification",
            "",
            f"- executability: {self.executable_calls} of {self.calls} calls returned a non-error output ({self.executability:.2%})",
            f"- duplicate rate: {self.duplicate_rate:.2%} (exact {self.mix.get('exact_duplicates', 0)}, near {self.mix.get('near_duplicates', 0)})",
            f"- dropped for failure keywords: {self.mix.get('failure_keyword', 0)}",
            f"- held out (by walk, never trained on): {self.mix.get('heldout', 0)}",
            "",
            "## Translation rejects",
            "",
            f"{self.rejected_episodes} of {self.episodes} episodes rejected.",
            "",
            "| reason | episodes |",
            "|---|---|",
        ]
        lines += [f"| {r.replace('|', '/')} | {n} |" for r, n in sorted(self.rejects_by_reason.items(), key=lambda x: -x[1])]
        if self.lint:
            lines += ["", "## Data lint", "", "| figure | count / total | share | threshold | result |", "|---|---:|---:|---|---|"]
            for r in self.lint:
                result = "-" if r["passed"] is None else "pass" if r["passed"] else "**FAIL**" + (" (blocking)" if r["blocking"] else "")
                lines.append(f"| {r['figure']} | {r['count']} / {r['total']} | {r['share']:.3f} | {r['threshold']} | {result} |")
        lines += ["", f"## Example ({self.example_id})", "", self.example or "(no multi-turn item)", ""]
        return "\n".join(lines)


def is_parallel(turn: EpisodeTurn) -> bool:
    """A turn with parallel calls: one function called more than once in the same round."""
    per_round = Counter(zip(turn.rounds, (c.name for c in turn.calls)))
    return any(n > 1 for n in per_round.values())


def _turn_shares(episodes: Sequence[Episode]) -> dict[str, float]:
    turns = [t for e in episodes for t in e.turns]
    if not turns:
        return {"nested": 0.0, "parallel": 0.0, "long_dependency": 0.0, "miss_func": 0.0, "miss_params": 0.0}
    nested = sum(1 for t in turns if any(r > 0 for r in t.rounds) or t.op == "insert_short")
    parallel = sum(1 for t in turns if is_parallel(t))
    long_dep = sum(1 for t in turns if t.op == "insert_long" or any(v == "earlier_turn" for s in t.sources for v in s.values()))
    return {
        "nested": nested / len(turns),
        "parallel": parallel / len(turns),
        "long_dependency": long_dep / len(turns),
        "miss_func": sum(t.label == "miss_func" for t in turns) / len(turns),
        "miss_params": sum(t.label == "miss_params" for t in turns) / len(turns),
    }


def _pick_example(rows: Sequence[SFTExample]) -> SFTExample | None:
    multi = [r for r in rows if r.kind == "multi_turn" and r.split == "train"] or [r for r in rows if r.kind == "multi_turn"]
    if not multi:
        return rows[0] if rows else None
    # a rich one: a function added mid-way or a question for a value, then the most calls
    return max(multi, key=lambda r: (bool(r.tool_updates), sum(1 for _ in cf.iter_calls(r.messages)), r.traj_id))


def quality_report(
    rows: Sequence[SFTExample], episodes: Sequence[Episode], mix: MixReport | None = None, lint: LintReport | None = None
) -> QualityReport:
    """The report of the set; ``lint``: the data lint of the same rows (its figures with a
    threshold and something to count, with their results, go in the markdown and the metadata)."""
    report = QualityReport(lint=[r for r in lint.rows() if r["total"]] if lint is not None else [])  # figures with something counted
    by_split: dict[str, Counter] = {}
    for r in rows:
        by_split.setdefault(r.split, Counter())[r.kind] += 1
    report.items_by_kind = {s: dict(c) for s, c in sorted(by_split.items())}
    report.mix_shares = mix_shares(rows)
    multi = [r for r in rows if r.kind == "multi_turn"]
    report.multi_turn_items = len(multi)
    if multi:
        report.turns_per_item = sum(cf.user_turns(r.messages) for r in multi) / len(multi)
        report.calls_per_item = sum(sum(1 for _ in cf.iter_calls(r.messages)) for r in multi) / len(multi)
    used = {r.episode_id for r in multi}
    report.turn_shares = _turn_shares([e for e in episodes if e.episode_id in used])
    report.executable_calls, report.calls = executability(rows)
    if mix is not None:
        report.mix = mix.model_dump()
        report.mix_targets = mix.targets
        report.duplicate_rate = mix.duplicate_rate
    report.episodes = len(episodes)
    rejected = [e for e in episodes if e.status == "rejected"]
    report.rejected_episodes = len(rejected)
    report.rejects_by_reason = dict(Counter(reason_class(e.reject_reason or "unknown") for e in rejected).most_common())
    example = _pick_example(rows)
    if example is not None:
        report.example_id = example.traj_id
        report.example = cf.render_markdown(example.messages, example.tools)
    return report
