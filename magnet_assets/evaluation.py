"""The evaluation stage: how the base model, the SFT checkpoint and the mDPO checkpoint do on
held-out multi-turn episodes (paper section 4, BFCL-v3 multi-turn breakdown and ToolQuery's
success / progress rate). The work is in :mod:`magnet_lib.evaluation.multi_turn`; ``magnet eval`` runs
the same evaluation on any checkpoint or served model.

Writes ``$MAGNET_HOME/reports/eval_report.md`` and ``eval_report.json`` (every judged turn);
with bfcl-eval installed, also a small BFCL subset per checkpoint (``bfcl.eval_limit`` entries of
``bfcl.eval_categories``) in ``bfcl_scores.json`` / ``.md``.
"""

import json
from pathlib import Path

import dagster as dg
import polars as pl

from magnet_assets.bfcl import bfcl_subset
from magnet_assets.metadata import llm_metadata
from magnet_assets.resources import MagnetResource
from magnet_assets.versions import versioned
from magnet_lib.models import Episode
from magnet_lib.tables import from_frame

# magnet_lib.evaluation.multi_turn and the training modules load torch: imported by the step
# (see magnet_assets.training)

#: The checkpoints evaluated, in the order of the report: name -> the asset that trains it
#: (None: the base model the SFT run started from, saved at <checkpoints>/base).
CHECKPOINTS = {"base": None, "sft": "sft_checkpoint", "mdpo": "mdpo_checkpoint"}


def checkpoint_path(context: dg.AssetExecutionContext, settings, name: str, asset: str | None) -> Path:
    """Where a checkpoint is: the ``path`` its asset recorded on its latest materialization,
    else its default folder under ``$MAGNET_HOME/checkpoints``."""
    if asset is not None:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
        recorded = event.asset_materialization.metadata.get("path") if event and event.asset_materialization else None
        if recorded is not None:
            return Path(recorded.value)
    return Path(settings.checkpoints_dir) / name


def write_report(report, reports_dir: Path) -> tuple[Path, Path]:
    reports_dir.mkdir(parents=True, exist_ok=True)
    md, js = reports_dir / "eval_report.md", reports_dir / "eval_report.json"
    md.write_text(report.markdown(), encoding="utf-8")
    js.write_text(report.to_json(), encoding="utf-8")
    return md, js


@dg.asset(
    group_name="evaluation",
    deps=["sft_checkpoint", "mdpo_checkpoint"],
    ins={"query_call_pairs": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    description="Multi-turn evaluation of the base model, the SFT and the mDPO checkpoints on the held-out episodes of "
    "sft_set (greedy, calls executed, every turn judged): one row per model x metric x kind (turn accuracy, episode "
    "success, progress rate per turn kind; error-type counts); report at $MAGNET_HOME/reports/eval_report.md and .json.",
)
def eval_report(
    context: dg.AssetExecutionContext, magnet: MagnetResource, sft_set: pl.DataFrame, query_call_pairs: pl.DataFrame
) -> dg.Output:
    from magnet_lib.evaluation.multi_turn import evaluate, evaluation_references
    from magnet_lib.training.hints import tool_pool
    from magnet_lib.training.sft import effective_train, training_output, uses_cpu_profile
    from magnet_lib.training.student import TransformersStudent

    settings = magnet.settings
    training_output(settings.run.verbose)
    train = effective_train(settings)
    refs, split, notes = evaluation_references(sft_set, from_frame(query_call_pairs, Episode), train.eval_episodes, settings.seed)
    if uses_cpu_profile(settings):
        notes.append(
            f"the tiny default model trained for a few CPU steps (replies cut at {train.student_max_new_tokens} tokens) "
            "cannot write a well-formed call yet: these numbers check the pipeline, not the method; set train.base_model "
            "to a real model for meaningful scores"
        )
    paths = {name: checkpoint_path(context, settings, name, asset) for name, asset in CHECKPOINTS.items()}
    models = {
        name: (
            lambda path=path: TransformersStudent(path, max_new_tokens=train.student_max_new_tokens, temperature=0.0, seed=settings.seed)
        )
        for name, path in paths.items()
    }
    with magnet.runner() as runner:
        # one response per call of the longest turn, then the reply
        max_steps = max(train.student_max_steps, settings.graph.max_calls_per_turn + 1)
        report = evaluate(models, refs, tool_pool(settings), runner, max_steps=max_steps, split=split, notes=notes)
        llm = llm_metadata(runner)
    md_path, json_path = write_report(report, settings.home / "reports")
    _, bfcl_meta = bfcl_subset(settings, {n: p for n, p in paths.items() if n in report.models}, context.log)
    for note in report.notes:
        context.log.warning(note)
    frame = report.frame()
    return versioned(
        frame,
        metadata={
            "dagster/row_count": frame.height,
            "report": dg.MetadataValue.md(report.markdown()),
            "summary": dg.MetadataValue.md(report.summary_table()),
            **report.headline(),
            "episodes": len(report.episodes),
            "split": split,
            "models": ", ".join(report.models),
            "checkpoints": dg.MetadataValue.json({name: str(p) for name, p in paths.items()}),
            "report_path": dg.MetadataValue.path(str(md_path)),
            "json_path": dg.MetadataValue.path(str(json_path)),
            "notes": dg.MetadataValue.json(json.loads(json.dumps(report.notes))),
            **llm,
            **bfcl_meta,
        },
    )
