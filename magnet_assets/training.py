"""The training stage (paper sections 3.1 and 3.5, negative part): SFT on the mix, the
student's judged errors as negative hints per category, mDPO pairs, and the mDPO model.

Checkpoints live under ``$MAGNET_HOME/checkpoints/`` (``sft``, ``mdpo``; ``base`` for the
locally built tiny model), each with its tokenizer, ``loss_curve.json`` and ``run.json`` (the
settings used, without secrets). The work is in :mod:`magnet_lib.training.sft`,
:mod:`magnet_lib.training.hints` and :mod:`magnet_lib.training.mdpo`; ``magnet train sft|mdpo`` runs the same
training outside Dagster.
"""

from collections import Counter

import dagster as dg
import polars as pl

from magnet_assets.metadata import (
    counts_metadata,
    json_metadata,
    llm_metadata,
    table_metadata,
)
from magnet_assets.partitions import category_partitions
from magnet_assets.resources import MagnetResource
from magnet_assets.versions import files_version, versioned
from magnet_lib.lint.report import lint_tables
from magnet_lib.models import Episode, NegativeHint, PreferencePair, Trajectory
from magnet_lib.tables import from_frame, to_frame

# The training modules (torch, transformers, TRL: seconds to import) are imported by the steps
# that train or generate, not when the definitions load: deciding what is stale, the UI's code
# server and every other step never pay for them.


def _training_metadata(result) -> dict:
    curve = result.loss_curve
    table = ["| step | loss | lr |", "|---|---|---|"] + [f"| {p['step']} | {p['loss']:.4f} | {p['learning_rate']:.2e} |" for p in curve]
    return {
        "path": dg.MetadataValue.path(str(result.path)),
        **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float, str)) and v is not None},
        "loss_curve": json_metadata(curve),
        "loss_table": dg.MetadataValue.md("\n".join(table)),
    }


@dg.asset(
    group_name="training",
    description="The base model fine-tuned on the train split of sft_set with TRL (assistant-only loss); "
    "checkpoint at $MAGNET_HOME/checkpoints/sft with its tokenizer, loss curve and settings used.",
)
def sft_checkpoint(context: dg.AssetExecutionContext, magnet: MagnetResource, sft_set: pl.DataFrame) -> dg.MaterializeResult:
    from magnet_lib.training.sft import train_sft, training_output

    training_output(magnet.settings.run.verbose)
    result = train_sft(magnet.settings, sft_set)
    context.log.info(f"SFT: {result.metrics['steps']} steps, loss {result.metrics['first_loss']:.3f} -> {result.metrics['final_loss']:.3f}")
    return dg.MaterializeResult(metadata=_training_metadata(result), data_version=files_version(result.path))


@dg.asset(
    partitions_def=category_partitions,
    group_name="training",
    deps=["sft_checkpoint"],
    description="Per category: the SFT model's judged wrong turns on the episodes (error type 1-5, reason, wrong calls "
    "or reply; source=student) and injected errors where the student showed too few (source=injected).",
)
def negative_hints(
    context: dg.AssetExecutionContext, magnet: MagnetResource, query_call_pairs: pl.DataFrame, sft_trajectories: pl.DataFrame
) -> dg.Output:
    from magnet_lib.training.hints import negative_hints as find_negative_hints
    from magnet_lib.training.sft import training_output
    from magnet_lib.training.student import load_student

    settings = magnet.settings
    training_output(settings.run.verbose)
    episodes = from_frame(query_call_pairs, Episode)
    trajectories = from_frame(sft_trajectories, Trajectory)
    with magnet.runner() as runner:
        student = load_student(settings) if trajectories else None
        hints, report = find_negative_hints(settings, episodes, trajectories, runner, student=student)
        llm = llm_metadata(runner)
    frame = to_frame(hints, NegativeHint)
    context.log.info(f"{context.partition_key}: {report.student_hints} student hints, {report.injected_hints} injected")
    return versioned(
        frame,
        metadata={
            **table_metadata(frame, ["episode_id", "turn_index", "error_type", "source", "reason"]),
            **{k: v for k, v in report.as_dict().items() if k != "by_type"},
            **counts_metadata("hints_by_type", report.by_type),
            "student": getattr(student, "name", "none"),
            **llm,
        },
    )


@dg.asset(
    group_name="training",
    deps=["sft_checkpoint"],
    ins={
        "negative_hints": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "query_call_pairs": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "sft_trajectories": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
    },
    description="mDPO preference pairs: prompt (system + first user turn), chosen (the reference through the erroneous "
    "turn) and rejected (the same with the negative turn) as message lists, tools, error type, source and ids.",
)
def mdpo_pairs(
    context: dg.AssetExecutionContext,
    magnet: MagnetResource,
    negative_hints: pl.DataFrame,
    query_call_pairs: pl.DataFrame,
    sft_trajectories: pl.DataFrame,
) -> dg.Output:
    from magnet_lib.training.hints import preference_pairs
    from magnet_lib.training.sft import training_output
    from magnet_lib.training.student import load_student

    settings = magnet.settings
    training_output(settings.run.verbose)
    hints = from_frame(negative_hints, NegativeHint)
    student = load_student(settings) if any(h.source == "student" for h in hints) else None
    with magnet.runner() as runner:
        pairs, counts = preference_pairs(
            settings, hints, from_frame(query_call_pairs, Episode), from_frame(sft_trajectories, Trajectory), student=student, runner=runner
        )
        llm = llm_metadata(runner)
    frame = to_frame(pairs, PreferencePair)
    return versioned(
        frame,
        metadata={
            **table_metadata(frame, ["pair_id", "category", "error_type", "source", "episode_id"]),
            **counts_metadata("pairs_by_type", Counter(p.error_type for p in pairs)),
            **counts_metadata("pairs_by_source", Counter(p.source for p in pairs)),
            **counts_metadata("negative_turns", counts),
            **llm,
        },
    )


@dg.asset(
    group_name="training",
    deps=["sft_checkpoint"],
    description="The SFT model trained with mDPO on mdpo_pairs (reference = the SFT model); checkpoint at "
    "$MAGNET_HOME/checkpoints/mdpo (LoRA merged) with its tokenizer, loss curve and settings used.",
)
def mdpo_checkpoint(context: dg.AssetExecutionContext, magnet: MagnetResource, mdpo_pairs: pl.DataFrame) -> dg.MaterializeResult:
    if mdpo_pairs.height == 0:
        raise ValueError("mdpo_pairs is empty: no negative hints were found or injected; check negative_hints of each category")
    from magnet_lib.training.mdpo import train_mdpo
    from magnet_lib.training.sft import training_output

    training_output(magnet.settings.run.verbose)
    result = train_mdpo(magnet.settings, mdpo_pairs)
    return dg.MaterializeResult(metadata=_training_metadata(result), data_version=files_version(result.path))


@dg.asset_check(
    asset=mdpo_pairs,
    blocking=True,
    additional_ins={"sft_set": dg.AssetIn("sft_set")},
    description="The data lint on mdpo_pairs: pairs from held-out episodes (blocking: the mDPO model would train on its "
    "evaluation) and rejected sides that differ from the chosen in more than the judged error.",
)
def mdpo_pairs_lint(magnet: MagnetResource, mdpo_pairs: pl.DataFrame, sft_set: pl.DataFrame) -> dg.AssetCheckResult:
    report = lint_tables(sft_set, mdpo_pairs, magnet.settings.lint, rules=["leakage", "pair_style"])
    return dg.AssetCheckResult(
        passed=not report.failed,
        severity=dg.AssetCheckSeverity.ERROR if report.blocking_failed else dg.AssetCheckSeverity.WARN,
        metadata={**report.metadata(), "failed": json_metadata(report.failed), "lint": dg.MetadataValue.md(report.to_markdown())},
    )
