"""Run the lint rules over a dataset; thresholds say which figures fail and which block."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from magnet_lib.lint.data import Dataset, from_records
from magnet_lib.lint.rules import RULES, Figure
from magnet_lib.settings import LintSettings as LintThresholds


class LintReport(BaseModel):
    figures: dict[str, dict[str, Any]] = Field(default_factory=dict)
    examples: dict[str, list[str]] = Field(default_factory=dict)
    failed: dict[str, str] = Field(default_factory=dict, description="figure -> why it fails its threshold")
    blocking_failed: list[str] = Field(default_factory=list)
    thresholds: dict[str, str] = Field(default_factory=dict, description="figure -> its threshold as text ('<= 0.02', 'mean >= 4.5')")
    blocking: list[str] = Field(default_factory=list, description="The figures whose failure blocks (lint.blocking).")

    def rows(self) -> list[dict[str, Any]]:
        """One row per figure with a threshold: name, count, total, share, threshold, passed
        (None when there was nothing to count), blocking: what the quality report shows."""
        out = []
        for name, f in self.figures.items():
            if name not in self.thresholds:
                continue
            passed = None if not f["total"] else name not in self.failed
            out.append({"figure": name, "count": f["count"], "total": f["total"], "share": f["share"], "threshold": self.thresholds[name],
                        "passed": passed, "blocking": name in self.blocking})  # fmt: skip
        return out

    def share(self, name: str) -> float:
        return float(self.figures.get(name, {}).get("share", 0.0))

    def metadata(self) -> dict[str, float]:
        """Flat figures for Dagster metadata: ``lint/<figure>`` -> share (or mean)."""
        return {f"lint/{k}": v["share"] for k, v in self.figures.items() if v["total"]}

    def to_markdown(self) -> str:
        lines = ["| figure | count | of | share | what |", "|---|---:|---:|---:|---|"]
        for name, f in self.figures.items():
            mark = " **FAIL**" if name in self.failed else ""
            lines.append(f"| {name}{mark} | {f['count']} | {f['total']} | {f['share']:.3f} | {f['description']} |")
        for name, why in self.failed.items():
            lines.append(f"\n- {name}: {why}" + (" (blocking)" if name in self.blocking_failed else ""))
            for ex in self.examples.get(name, [])[:3]:
                lines.append(f"  - `{ex}`")
        return "\n".join(lines) + "\n"


def _evaluate(figures: list[Figure], thresholds: LintThresholds) -> tuple[dict[str, str], list[str]]:
    failed: dict[str, str] = {}
    for f in figures:
        if not f.total:
            continue
        if f.name in thresholds.max and f.share > thresholds.max[f.name]:
            failed[f.name] = f"{f.share:.3f} > {thresholds.max[f.name]}"
        if f.name in thresholds.min and f.share < thresholds.min[f.name]:
            failed[f.name] = f"{f.share:.3f} < {thresholds.min[f.name]}"
        if f.name in thresholds.min_mean and f.share < thresholds.min_mean[f.name]:
            failed[f.name] = f"mean {f.share:.2f} < {thresholds.min_mean[f.name]}"
    return failed, [n for n in failed if n in thresholds.blocking]


def lint(data: Dataset, thresholds: LintThresholds | None = None, rules: list[str] | None = None) -> LintReport:
    """Every rule (or the named ones) over ``data``; empty figures (nothing to count) are kept
    with total 0 and never fail."""
    thresholds = thresholds or LintThresholds()
    figures: list[Figure] = []
    for name, rule in RULES.items():
        if rules is None or name in rules:
            figures.extend(rule(data))
    return _judged(figures, thresholds)


def rejudged(report: LintReport, thresholds: LintThresholds) -> LintReport:
    """A report's figures judged by other thresholds: the figures depend on the data alone,
    so a check whose table has not changed need not count again."""
    figures = [Figure(n, f["count"], f["total"], f["description"], report.examples.get(n, [])) for n, f in report.figures.items()]
    return _judged(figures, thresholds)


def _judged(figures: list[Figure], thresholds: LintThresholds) -> LintReport:
    failed, blocking = _evaluate(figures, thresholds)
    limits = {n: f"<= {v}" for n, v in thresholds.max.items()}
    limits |= {n: f">= {v}" for n, v in thresholds.min.items()} | {n: f"mean >= {v}" for n, v in thresholds.min_mean.items()}
    return LintReport(
        figures={f.name: f.as_dict() for f in figures},
        examples={f.name: f.examples for f in figures if f.examples},
        failed=failed,
        blocking_failed=blocking,
        thresholds={f.name: limits[f.name] for f in figures if f.name in limits},
        blocking=[n for n in thresholds.blocking if n in {f.name for f in figures}],
    )


def lint_tables(
    sft_set: Any = None,
    mdpo_pairs: Any = None,
    thresholds: LintThresholds | None = None,
    pool: list[str] | None = None,
    rules: list[str] | None = None,
) -> LintReport:
    """The lint of Magnet's tables (Polars frames of ``sft_set`` and/or ``mdpo_pairs``), as the
    asset checks, ``magnet lint`` and the benchmark run it."""

    data = Dataset(pool=pool)
    for frame in (sft_set, mdpo_pairs):
        if frame is not None:
            from_records(frame.iter_rows(named=True), data)
    return lint(data, thresholds, rules)
