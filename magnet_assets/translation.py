"""The translation stage (paper sections 3.3, 3.5 positive part, 3.6): query-call pairs per
category, positive trajectories by hint-guided distillation, single-turn and irrelevance
items, and the SFT set with its data quality report; blocking checks on the trajectories and
the mix."""

import json
from collections import Counter
from pathlib import Path

import dagster as dg
import polars as pl

from magnet_assets.graph import blocking_outcome
from magnet_assets.metadata import (
    counts_metadata,
    json_metadata,
    llm_metadata,
    table_metadata,
)
from magnet_assets.partitions import category_partitions
from magnet_assets.resources import MagnetResource
from magnet_assets.versions import DATA_VERSION_TAG, versioned
from magnet_lib.distillation.mixing import SFTExample, build_sft_set, mix_shares
from magnet_lib.distillation.quality import executability, quality_report, reason_class
from magnet_lib.distillation.single_turn import item_counts, make_single_turn
from magnet_lib.distillation.teacher import call_problems, distill
from magnet_lib.lint.report import LintReport, lint_tables, rejudged
from magnet_lib.models import AugmentedFSP, Episode, Tool, Trajectory
from magnet_lib.tables import from_frame, to_frame
from magnet_lib.training.chat_format import render_markdown
from magnet_lib.translation.episodes import translate

#: a category with fewer accepted episodes still gets single-turn items as if it had these
MIN_SINGLE_TURN_BASE = 4


@dg.asset(
    partitions_def=category_partitions,
    group_name="translation",
    description="Per episode (one augmented FSP in a fresh seeded environment): per turn the query, the executed "
    "calls, their real outputs, the label and the operation that made the turn; the seed, initial state and FSP id. "
    "Rejected episodes keep status='rejected' and the reason.",
)
def query_call_pairs(
    context: dg.AssetExecutionContext, magnet: MagnetResource, augmented_fsps: pl.DataFrame, function_pool: pl.DataFrame
) -> dg.Output:
    settings = magnet.settings
    tools = from_frame(function_pool, Tool)
    with magnet.runner() as runner:
        episodes = translate(from_frame(augmented_fsps, AugmentedFSP), tools, settings, runner)
        llm = llm_metadata(runner)
    frame = to_frame(episodes, Episode)
    ok = [e for e in episodes if e.status == "ok"]
    reasons = Counter(reason_class(e.reject_reason or "") for e in episodes if e.status == "rejected")
    context.log.info(f"{context.partition_key}: {len(ok)} of {len(episodes)} episodes translated")
    return versioned(
        frame,
        metadata={
            **table_metadata(frame, ["episode_id", "variant", "status", "reject_reason"]),
            "episodes_ok": len(ok),
            "episodes_rejected": len(episodes) - len(ok),
            **counts_metadata("rejects_by_reason", reasons),
            "turns": sum(len(e.turns) for e in ok),
            "calls": sum(len(t.calls) for e in ok for t in e.turns),
            **llm,
        },
    )


@dg.asset(
    partitions_def=category_partitions,
    group_name="translation",
    description="Positive multi-turn trajectories by hint-guided context distillation, in OpenAI chat format with "
    "tools and the BFCL-style system prompt; every call really executed.",
    check_specs=[
        dg.AssetCheckSpec(
            "calls_offered_and_valid",
            asset="sft_trajectories",
            blocking=True,
            description="Every call names an offered tool and its arguments validate against its schema.",
        ),
        dg.AssetCheckSpec(
            "calls_executable",
            asset="sft_trajectories",
            blocking=True,
            description="Every call returned a non-error output (executability 100%).",
        ),
    ],
)
def sft_trajectories(
    context: dg.AssetExecutionContext, magnet: MagnetResource, query_call_pairs: pl.DataFrame, function_pool: pl.DataFrame
):
    tools = from_frame(function_pool, Tool)
    with magnet.runner() as runner:
        results = distill(from_frame(query_call_pairs, Episode), tools, runner)
        llm = llm_metadata(runner)
    trajectories = [r.trajectory for r in results if r.trajectory is not None]
    rejects = Counter(reason_class(r.reject_reason) for r in results if r.reject_reason)
    frame = to_frame(trajectories, Trajectory)
    output = versioned(
        frame,
        metadata={
            **table_metadata(frame, ["traj_id", "episode_id", "kind", "generator"]),
            "distill_rejects": sum(rejects.values()),
            **counts_metadata("distill_rejects_by_reason", rejects),
            **llm,
        },
    )
    problems = [p for t in trajectories for p in call_problems(t, {x.name: x for x in tools})]
    ok, total = executability(trajectories)
    checks = [
        dg.AssetCheckResult(
            check_name="calls_offered_and_valid",
            passed=not problems,
            metadata={"problems": len(problems), "first_problems": json_metadata(problems[:10])},
        ),
        dg.AssetCheckResult(check_name="calls_executable", passed=ok == total, metadata={"calls": total, "executable": ok}),
    ]
    yield from blocking_outcome(checks, output)


@dg.asset(
    partitions_def=category_partitions,
    group_name="translation",
    description="Single-turn items (single / parallel / multiple calls) and irrelevance items (no offered function "
    "fits, or a required value is missing) for the category, sized from its accepted episodes and the mix ratios.",
)
def single_turn_and_irrelevance(
    context: dg.AssetExecutionContext, magnet: MagnetResource, function_pool: pl.DataFrame, query_call_pairs: pl.DataFrame
) -> dg.Output:
    settings = magnet.settings
    tools = from_frame(function_pool, Tool)
    accepted = query_call_pairs.filter(pl.col("status") == "ok").height if query_call_pairs.height else 0
    counts = item_counts(max(accepted, MIN_SINGLE_TURN_BASE), settings)
    with magnet.runner() as runner:
        items, failed = make_single_turn(tools, counts, settings, runner)
        llm = llm_metadata(runner)
    frame = to_frame(items, Trajectory)
    return versioned(
        frame,
        metadata={
            **table_metadata(frame, ["traj_id", "kind", "functions"]),
            **counts_metadata("items_by_kind", Counter(t.kind for t in items)),
            **counts_metadata("requested", counts),
            **counts_metadata("not_made", failed),
            **llm,
        },
    )


@dg.asset(
    group_name="translation",
    ins={
        "sft_trajectories": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "single_turn_and_irrelevance": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "query_call_pairs": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
    },
    description="The SFT mix of every category: trajectory columns plus split (train | heldout, held out by walk); "
    "ratios from the settings, tool order shuffled per example, failure keywords filtered, duplicates removed. "
    "Writes the data quality report to $MAGNET_HOME/reports/.",
    check_specs=[
        dg.AssetCheckSpec(
            "mix_within_tolerance",
            asset="sft_set",
            blocking=True,
            description="Each bucket's share of the train split is within distill.mix_tolerance (default 2%) of its target.",
        ),
        dg.AssetCheckSpec(
            "executability", asset="sft_set", blocking=True, description="Every call in the set returned a non-error output."
        ),
    ],
)
def sft_set(
    context: dg.AssetExecutionContext,
    magnet: MagnetResource,
    sft_trajectories: pl.DataFrame,
    single_turn_and_irrelevance: pl.DataFrame,
    query_call_pairs: pl.DataFrame,
):
    settings = magnet.settings
    trajectories = from_frame(sft_trajectories, Trajectory) + from_frame(single_turn_and_irrelevance, Trajectory)
    rows, mix = build_sft_set(trajectories, settings.distill, settings.seed)
    contaminated: list[str] = []
    if settings.bfcl.drop_contaminated != "none":  # the default keeps every item: no need for BFCL's backend (torch, seconds to import)
        from magnet_lib.evaluation.contamination import bfcl_aliases, drop_contaminated

        rows, contaminated = drop_contaminated(rows, settings.bfcl.drop_contaminated, aliases=bfcl_aliases(settings))
    episodes = from_frame(query_call_pairs, Episode)
    frame = to_frame(rows, SFTExample)
    lint = lint_tables(sft_set=frame, thresholds=settings.lint)
    report = quality_report(rows, episodes, mix, lint)
    reports = settings.home / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "sft_set_quality.md").write_text(report.to_markdown(), encoding="utf-8")
    (reports / "sft_set_mix.json").write_text(mix.model_dump_json(indent=2), encoding="utf-8")
    meta = {k: (json_metadata(v) if isinstance(v, (dict, list)) else v) for k, v in report.metadata().items()}
    output = versioned(
        frame,
        metadata={
            **table_metadata(frame, ["traj_id", "kind", "split", "category"]),
            **meta,
            "quality_report": dg.MetadataValue.md(report.to_markdown()),
            "mix": json_metadata(mix.model_dump()),
            "example": dg.MetadataValue.md(report.example or render_markdown([], [])),
            "dropped_as_contaminated": len(contaminated),
        },
    )
    _save_lint(settings.home, output.data_version, lint)
    shares = mix_shares(rows)
    total = sum(mix.targets.values()) or 1.0
    train = sum(1 for r in rows if r.split == "train")
    tolerance = max(settings.distill.mix_tolerance, 1.5 / train) if train else settings.distill.mix_tolerance
    deviation = {k: round(shares[k] - mix.targets.get(k, 0) / total, 4) for k in shares}
    mix_check = dg.AssetCheckResult(
        check_name="mix_within_tolerance",
        passed=train > 0 and all(abs(d) <= tolerance for d in deviation.values()),
        metadata={
            "train_items": train,
            "tolerance": tolerance,
            "deviation": json_metadata(deviation),
            "limiting_bucket": str(mix.limiting_bucket),
        },
    )
    ok, calls = report.executable_calls, report.calls
    exec_check = dg.AssetCheckResult(check_name="executability", passed=ok == calls, metadata={"calls": calls, "executable": ok})
    yield from blocking_outcome([mix_check, exec_check], output)


@dg.asset_check(
    asset=sft_set,
    blocking=True,
    description="The data lint (magnet_lib.lint) on sft_set: value provenance, unit agreement, pasted descriptions, "
    "named nested calls, summaries, pool coverage per kind, duplicates, conversation length. Fails (WARN) on a figure "
    "beyond lint.max/min; ERROR (blocking) only for the figures in lint.blocking.",
)
def sft_set_lint(context: dg.AssetCheckExecutionContext, magnet: MagnetResource, sft_set: pl.DataFrame) -> dg.AssetCheckResult:
    settings = magnet.settings
    saved = _saved_lint(settings.home, _stored_version(context.instance, dg.AssetKey("sft_set")))
    report = rejudged(saved, settings.lint) if saved is not None else lint_tables(sft_set=sft_set, thresholds=settings.lint)
    reports = settings.home / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "sft_set_lint.md").write_text(report.to_markdown(), encoding="utf-8")
    return dg.AssetCheckResult(
        passed=not report.failed,
        severity=dg.AssetCheckSeverity.ERROR if report.blocking_failed else dg.AssetCheckSeverity.WARN,
        metadata={**report.metadata(), "failed": json_metadata(report.failed), "lint": dg.MetadataValue.md(report.to_markdown())},
    )


def _lint_file(home: Path) -> Path:
    return home / "reports" / "sft_set_lint.json"


def _save_lint(home: Path, version: dg.DataVersion | None, report: LintReport) -> None:
    """The lint ``sft_set`` measured, with the data version of the table it measured: the
    check after it judges these figures instead of counting again (over a second a run)."""
    if version is not None:
        payload = {"data_version": version.value, "report": report.model_dump(mode="json")}
        _lint_file(home).write_text(json.dumps(payload), encoding="utf-8")


def _stored_version(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    """The data version of the stored table: what its latest materialization recorded."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event is not None else None
    return materialization.tags.get(DATA_VERSION_TAG) if materialization is not None and materialization.tags else None


def _saved_lint(home: Path, version: str | None) -> LintReport | None:
    """The saved lint when it measured this very table (else None: count again)."""
    if version is None:
        return None
    try:
        payload = json.loads(_lint_file(home).read_text(encoding="utf-8"))
        return LintReport.model_validate(payload["report"]) if payload.get("data_version") == version else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
