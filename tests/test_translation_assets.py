"""The translation stage through Dagster: query_call_pairs, sft_trajectories,
single_turn_and_irrelevance and sft_set, with their blocking checks, on a built-in category
and a spec-only user category."""

import json

import dagster as dg
import pytest

from magnet_lib.distillation.mixing import SFTExample
from magnet_lib.models import Episode, Trajectory
from magnet_lib.tables import from_frame
from tests.test_graph_assets import TIDES

STAGE = ("query_call_pairs", "sft_trajectories", "single_turn_and_irrelevance")


@pytest.fixture
def translated(dagster_harness):
    h = dagster_harness
    (h.tools_dir / "marine").mkdir()
    (h.tools_dir / "marine" / "tides.json").write_text(json.dumps(TIDES))
    categories = ("navigation", "marine")
    h.add_categories(*categories)
    for category in categories:
        assert h.materialize("function_pool", "tool_rejects", "dependency_edges", "dependency_graph", partition=category).success
    for category in categories:
        assert h.materialize("fsps", "augmented_fsps", *STAGE, partition=category).success
    result = h.materialize("sft_set")
    return h, result


def test_translation_stage_materializes_with_passing_checks(translated):
    h, result = translated
    assert result.success
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert {k: c.passed for k, c in evaluations.items() if k != "sft_set_lint"} == {"mix_within_tolerance": True, "executability": True}
    # the data lint runs on the set: its figures in the metadata, nothing blocking on two categories
    lint = evaluations["sft_set_lint"]
    assert lint.passed or lint.severity == dg.AssetCheckSeverity.WARN
    assert "lint/pasted_description" in lint.metadata and "lint/other_quantity" in lint.metadata
    for category in ("navigation", "marine"):
        episodes = from_frame(h.table("query_call_pairs", category), Episode)
        assert episodes and all(e.category == category for e in episodes)
        assert all(e.reject_reason for e in episodes if e.status == "rejected")
        trajectories = from_frame(h.table("sft_trajectories", category), Trajectory)
        assert {t.episode_id for t in trajectories} == {e.episode_id for e in episodes if e.status == "ok"}
        singles = from_frame(h.table("single_turn_and_irrelevance", category), Trajectory)
        assert {"single", "irrelevance"} <= {t.kind for t in singles}
    rows = from_frame(h.table("sft_set"), SFTExample)
    assert {r.split for r in rows} <= {"train", "heldout"}
    assert {"multi_turn", "single", "irrelevance"} <= {r.kind for r in rows}
    assert all(r.messages[0]["role"] == "system" for r in rows)
    report = (h.home / "reports" / "sft_set_quality.md").read_text()
    assert "executability" in report and "(100.00%)" in report
    # the lint's figures in the quality report and the asset's metadata: count / total, share, threshold, result
    assert "## Data lint" in report and "| duplicated_tool_json | 0 / " in report and "| <= 0.0 | pass |" in report
    assert "| heldout_pairs" not in report  # a pairs figure: the mdpo_pairs check reports it
    meta = result.asset_materializations_for_node("sft_set")[0].metadata
    assert meta["lint/duplicated_tool_json"].value == 0.0 and "lint/pasted_description" in meta and "lint_failed" in meta
    # the check judged the figures the asset counted (saved beside the reports), the same ones
    assert {k: lint.metadata[k].value for k in meta if k.startswith("lint/")} == {
        k: v.value for k, v in meta.items() if k.startswith("lint/")
    }
    saved_file = h.home / "reports" / "sft_set_lint.json"
    saved = json.loads(saved_file.read_text())
    assert saved["data_version"] == result.asset_materializations_for_node("sft_set")[0].tags["dagster/data_version"]
    # proof that it reads them: a planted figure shows in the check run alone; another version is counted again
    figure = saved["report"]["figures"]["pasted_description"]
    figure["count"] = figure["total"] = 7
    saved_file.write_text(json.dumps(saved))
    check = dg.AssetCheckKey(dg.AssetKey("sft_set"), "sft_set_lint")

    def check_alone():
        job = h.defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(), asset_check_selection={check})
        run = job.execute_in_process(instance=h.instance)
        return run.get_asset_check_evaluations()[0].metadata["lint/pasted_description"].value

    assert check_alone() == 1.0
    saved["data_version"] = "another"
    saved_file.write_text(json.dumps(saved))
    assert check_alone() == meta["lint/pasted_description"].value
    # the trajectory checks run with every partition's materialization
    result = h.materialize("sft_trajectories", partition="navigation")
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"calls_offered_and_valid": True, "calls_executable": True}
