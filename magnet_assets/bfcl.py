"""BFCL v3 in the pipeline: the contamination report of ``sft_set`` against BFCL's multi-turn
ground-truth paths, and the small BFCL subset ``eval_report`` adds (both need bfcl-eval; without
it the report is empty with a note and ``eval_report`` runs without BFCL). The work is in
:mod:`magnet_lib.evaluation.bfcl` and :mod:`magnet_lib.evaluation.contamination`.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from magnet_assets.resources import MagnetResource

# magnet_lib.evaluation.bfcl loads torch (its transformers backend): imported by the steps that
# use it (see magnet_assets.training)


@dg.asset(
    group_name="evaluation",
    description="Contamination of sft_set with BFCL's multi-turn test set: per item, its call path's exact match with a BFCL "
    "ground-truth path and its shared 2-grams (paper: 0.3% exact, 5.3% 2-gram); flagged per bfcl.drop_contaminated. "
    "Report at $MAGNET_HOME/reports/contamination_report.md and .json. Empty, with a note, without bfcl-eval.",
)
def contamination_report(context: dg.AssetExecutionContext, magnet: MagnetResource, sft_set: pl.DataFrame) -> dg.Output:
    from magnet_lib.evaluation import bfcl, contamination

    settings = magnet.settings
    reason = bfcl.unavailable_reason()
    notes = []
    if reason:
        notes.append(f"no contamination check: {reason}")
        paths: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
    else:
        paths = bfcl.multi_turn_paths()
        rows = sft_set.to_dicts()
    aliases = None
    if settings.bfcl.tool_source and not reason:  # renamed BFCL functions count as their BFCL names
        from magnet_lib.pool.bfcl_source import name_mapping

        aliases = name_mapping()
        notes.append("the BFCL tool source is on: its renamed functions are compared under their BFCL names")
    report = contamination.contamination(rows, paths, settings.bfcl.drop_contaminated, notes, aliases)
    if settings.bfcl.drop_contaminated != "none":
        report.notes.append(
            f"sft_set drops the {report.summary()['flagged']} flagged items (bfcl.drop_contaminated={settings.bfcl.drop_contaminated})"
        )
    reports = settings.home / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    md, js = reports / "contamination_report.md", reports / "contamination_report.json"
    md.write_text(report.markdown(), encoding="utf-8")
    js.write_text(report.to_json(), encoding="utf-8")
    for note in report.notes:
        context.log.warning(note)
    frame = report.frame()
    summary = report.summary()
    return dg.Output(
        frame,
        metadata={
            "dagster/row_count": frame.height,
            **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))},
            "report": dg.MetadataValue.md(report.markdown()),
            "report_path": dg.MetadataValue.path(str(md)),
            "notes": dg.MetadataValue.json(list(report.notes)),
        },
    )


def bfcl_subset(settings, checkpoints: dict[str, Path], log=None) -> tuple[list, dict[str, Any]]:
    """``eval_report``'s BFCL part: each checkpoint on the first ``bfcl.eval_limit`` entries of
    ``bfcl.eval_categories``; writes ``reports/bfcl_scores.json`` and ``.md``. Nothing (and a
    note in the metadata) when bfcl-eval is absent or ``eval_limit`` is 0."""
    from magnet_lib.evaluation import bfcl
    from magnet_lib.training.sft import effective_train

    cfg = settings.bfcl
    reason = bfcl.unavailable_reason()
    if reason or cfg.eval_limit <= 0:
        return [], {"bfcl": reason or "off (bfcl.eval_limit = 0)"}
    train = effective_train(settings)
    reports = []
    for name, path in checkpoints.items():
        try:
            backend = bfcl.TransformersBackend(path, cfg.eval_style, max_new_tokens=train.student_max_new_tokens, seed=settings.seed)
        except Exception as exc:
            if log:
                log.warning(f"BFCL: {name} not evaluated, it could not be loaded ({type(exc).__name__})")
            continue
        report = bfcl.evaluate(backend, cfg.eval_categories, cfg.eval_limit)
        report.model = name
        reports.append(report)
        del backend
    if not reports:
        return [], {"bfcl": "no checkpoint could be loaded"}
    js, md = bfcl.write_report(reports, settings.home / "reports", limit=cfg.eval_limit)
    meta: dict[str, Any] = {f"bfcl/{r.model}/overall": float(r.scores()["overall"] or 0.0) for r in reports}
    meta["bfcl_report"] = dg.MetadataValue.md(bfcl.combined_markdown(reports))
    meta["bfcl_path"] = dg.MetadataValue.path(str(js))
    meta["bfcl_scores"] = dg.MetadataValue.json(json.loads(json.dumps({r.model: r.scores()["categories"] for r in reports})))
    return reports, meta
