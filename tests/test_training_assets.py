"""The training tail as Dagster assets on a temporary home: sft_checkpoint, negative_hints,
mdpo_pairs, mdpo_checkpoint; the checkpoints load with transformers and generate."""

from __future__ import annotations

import json

import polars as pl
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from magnet_lib.models import Episode, NegativeHint, PreferencePair, Trajectory
from magnet_lib.tables import from_frame, to_frame
from magnet_lib.training.chat_format import template_messages
from tests.training_support import navigation_episode, sft_rows


def write_upstream(storage, episodes, trajectories, sft):
    (storage / "query_call_pairs").mkdir(parents=True)
    (storage / "sft_trajectories").mkdir(parents=True)
    to_frame(episodes, Episode).write_parquet(storage / "query_call_pairs" / "navigation.parquet")
    to_frame(trajectories, Trajectory).write_parquet(storage / "sft_trajectories" / "navigation.parquet")
    to_frame(sft, Trajectory).with_columns(split=pl.lit("train")).write_parquet(storage / "sft_set.parquet")


def test_hints_and_pairs_assets_on_an_untrained_checkpoint(dagster_harness, monkeypatch):
    """Fast: the student is the untrained tiny model saved where sft_checkpoint puts it."""
    from magnet_assets.definitions import build_definitions
    from magnet_lib.training.base_models import build_tiny

    monkeypatch.setenv("MAGNET_TRAIN_STUDENT_MAX_NEW_TOKENS", "4")
    h = dagster_harness
    # the settings are the resource's configuration, fixed when the definitions load
    h.defs = build_definitions(home=str(h.home), tools_dir=str(h.tools_dir))
    episode, traj = navigation_episode()
    write_upstream(h.home / "storage", [episode], [traj], [traj])
    model, tok = build_tiny([{"messages": traj.messages, "tools": traj.tools}])
    model.save_pretrained(h.home / "checkpoints" / "sft")
    tok.save_pretrained(h.home / "checkpoints" / "sft")
    h.add_categories("navigation")
    result = h.materialize("negative_hints", partition="navigation")
    assert result.success
    meta = result.asset_materializations_for_node("negative_hints")[0].metadata
    assert meta["injected_hints"].value == 5 and meta["unusable_turns"].value == 2
    assert meta["student"].value.startswith("transformers:")
    assert h.materialize("mdpo_pairs").success
    pairs = from_frame(h.table("mdpo_pairs"), PreferencePair)
    assert sorted(p.error_type for p in pairs) == [1, 2, 3, 4, 5] and all(p.source == "injected" for p in pairs)


@pytest.mark.slow
def test_training_tail_materializes(dagster_harness, monkeypatch):
    monkeypatch.setenv("MAGNET_TRAIN_MAX_STEPS", "3")
    monkeypatch.setenv("MAGNET_TRAIN_MAX_LENGTH", "4096")
    monkeypatch.setenv("MAGNET_TRAIN_STUDENT_MAX_NEW_TOKENS", "8")
    h = dagster_harness
    pairs = [navigation_episode(seed=7 + i, episode_id=f"ep-{i}") for i in range(2)]
    write_upstream(h.home / "storage", [e for e, _ in pairs], [t for _, t in pairs], sft_rows(1, 2))
    h.add_categories("navigation")

    assert h.materialize("sft_checkpoint").success
    result = h.materialize("negative_hints", partition="navigation")
    assert result.success
    hints = from_frame(h.table("negative_hints", "navigation"), NegativeHint)
    meta = result.asset_materializations_for_node("negative_hints")[0].metadata
    assert meta["student_episodes"].value == 1 and meta["samples"].value == 2  # CPU profile: 1 episode, 2 samples
    assert {h_.source for h_ in hints} == {"injected"} and sorted({h_.error_type for h_ in hints}) == [1, 2, 3, 4, 5]

    assert h.materialize("mdpo_pairs").success
    pairs_out = from_frame(h.table("mdpo_pairs"), PreferencePair)
    assert len(pairs_out) == len(hints) and {p.episode_id for p in pairs_out} == {"ep-0", "ep-1"}
    assert set(h.table("mdpo_pairs").columns) >= {"prompt", "chosen", "rejected", "tools", "error_type", "source"}

    result = h.materialize("mdpo_checkpoint")
    assert result.success
    meta = result.asset_materializations_for_node("mdpo_checkpoint")[0].metadata
    assert meta["steps"].value == 3 and len(meta["loss_curve"].value) == 3
    for name in ("sft", "mdpo"):
        path = h.home / "checkpoints" / name
        run = json.loads((path / "run.json").read_text())
        assert run["stage"] == name and "api_key" not in json.dumps(run["settings"]["llm"])
        model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        prompt = tok.apply_chat_template(
            template_messages(pairs_out[0].prompt), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
        assert out.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.slow
def test_magnet_run_from_a_fresh_home_trains_both_checkpoints(magnet_home):
    """`magnet run` (the orchestrator behind it) on the built-in tools, offline, tiny model
    (its time: benchmarks/pipeline_time.py)."""
    from magnet_assets.orchestrate import run_pipeline
    from magnet_lib.settings import load_settings

    summary = run_pipeline(load_settings(home=str(magnet_home)), assets=["mdpo_checkpoint"])
    assert not summary.failed, [(s.asset, s.partition, s.error) for s in summary.failed]
    done = {s.asset for s in summary.materialized()}
    assert {"sft_checkpoint", "negative_hints", "mdpo_pairs", "mdpo_checkpoint"} <= done
    pairs = from_frame(pl.read_parquet(magnet_home / "storage" / "mdpo_pairs.parquet"), PreferencePair)
    assert pairs and {p.error_type for p in pairs} == {1, 2, 3, 4, 5}
    for name in ("sft", "mdpo"):
        path = magnet_home / "checkpoints" / name
        model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        prompt = tok.apply_chat_template(
            template_messages(pairs[0].prompt), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        assert model.generate(**prompt, max_new_tokens=4, do_sample=False).shape[1] > prompt["input_ids"].shape[1]


_STEP_PROCESS = """
import json, sys
from pathlib import Path
import dagster as dg, datasets, transformers
from magnet_assets.definitions import build_definitions
from magnet_lib.training.base_models import build_tiny
from tests.test_training_assets import write_upstream
from tests.training_support import navigation_episode

home = Path(sys.argv[1])
episode, traj = navigation_episode()
write_upstream(home / "storage", [episode], [traj], [traj])
model, tok = build_tiny([{"messages": traj.messages, "tools": traj.tools}])
model.save_pretrained(home / "checkpoints" / "sft")
tok.save_pretrained(home / "checkpoints" / "sft")
before = datasets.is_progress_bar_enabled() and transformers.utils.logging.is_progress_bar_enabled()
defs = build_definitions(home=str(home))
with dg.instance_for_test() as instance:
    instance.add_dynamic_partitions("category", ["navigation"])
    job = defs.resolve_implicit_global_asset_job_def()
    ok = job.execute_in_process(instance=instance, partition_key="navigation", asset_selection=[dg.AssetKey("negative_hints")]).success
print(json.dumps({"ok": ok, "before": before, "datasets": datasets.is_progress_bar_enabled(),
                  "transformers": transformers.utils.logging.is_progress_bar_enabled()}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True])
def test_the_quiet_setting_reaches_a_step_in_its_own_process(magnet_home, tmp_path, verbose):
    """A step subprocess of the multiprocess executor (or a Dask worker) never ran the CLI:
    the training step itself applies ``run.verbose`` (``magnet run -v``)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, MAGNET_TRAIN_STUDENT_MAX_NEW_TOKENS="4", MAGNET_RUN_VERBOSE=str(verbose).lower())
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.run([sys.executable, "-c", _STEP_PROCESS, str(magnet_home)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["ok"] and seen["before"]  # nothing had silenced them before the step
    assert seen["datasets"] is verbose and seen["transformers"] is verbose
