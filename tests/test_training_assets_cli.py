"""``magnet train sft|mdpo`` outside Dagster, the accelerate launch line and configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from magnet_assets.cli_train import launch_command, register
from magnet_lib.models import PreferencePair, Trajectory
from magnet_lib.tables import to_frame
from tests.training_support import sft_rows

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "accelerate"


def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main() -> None:  # a group, so `train` is a sub-command as in `magnet`
        pass

    register(root)
    return root


def test_train_sft_and_mdpo_from_parquet(magnet_home, monkeypatch):
    from magnet_lib.training.hints import assemble_pair, inject_errors, negative_turn
    from magnet_lib.training.reference import Reference
    from tests.training_support import navigation_episode, navigation_tools

    monkeypatch.setenv("MAGNET_TRAIN_MAX_STEPS", "2")
    monkeypatch.setenv("MAGNET_TRAIN_MAX_LENGTH", "2048")  # the navigation specs are written once in the system turn
    storage = magnet_home / "storage"
    storage.mkdir(parents=True)
    to_frame(sft_rows(1, 2), Trajectory).with_columns(split=pl.lit("train")).write_parquet(storage / "sft_set.parquet")
    episode, traj = navigation_episode()
    ref = Reference(traj, episode)
    pairs = [
        assemble_pair(ref, i.hint, negative_turn(ref, i.hint, navigation_tools(), None)) for i in inject_errors(ref, navigation_tools())
    ]
    to_frame(pairs, PreferencePair).write_parquet(magnet_home / "pairs.parquet")

    runner = CliRunner()
    result = runner.invoke(app(), ["train", "sft", "--home", str(magnet_home)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.rindex('{\n  "path"') :])["steps"] == 2
    result = runner.invoke(
        app(),
        ["train", "mdpo", "--home", str(magnet_home), "--data", str(magnet_home / "pairs.parquet"), "--output", str(magnet_home / "m")],
    )
    assert result.exit_code == 0, result.output
    assert (magnet_home / "m" / "model.safetensors").exists() and (magnet_home / "checkpoints" / "sft" / "run.json").exists()
    missing = runner.invoke(app(), ["train", "mdpo", "--home", str(magnet_home / "nowhere")])
    assert missing.exit_code == 1 and "magnet run" in missing.output


def test_accelerate_launch_line_and_configs():
    from accelerate.commands.config.config_args import load_config_from_file

    cmd = launch_command("mdpo", CONFIGS / "fsdp.yaml", 16, ["--home", "/data/h"])
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "16" and cmd[-5:] == ["-m", "magnet_assets.cli_train", "mdpo", "--home", "/data/h"]
    # the module accelerate launches is the same Typer app, runnable with python -m
    done = subprocess.run([sys.executable, "-m", "magnet_assets.cli_train", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "sft" in done.stdout and "mdpo" in done.stdout, done.stderr[-2000:]
    fsdp = load_config_from_file(str(CONFIGS / "fsdp.yaml"))
    assert str(fsdp.distributed_type).endswith("FSDP") and fsdp.fsdp_config["fsdp_version"] == 2
    zero3 = load_config_from_file(str(CONFIGS / "deepspeed_zero3.yaml"))
    assert str(zero3.distributed_type).endswith("DEEPSPEED") and zero3.deepspeed_config["zero_stage"] == 3


@pytest.mark.slow
def test_sft_under_accelerate_launch_on_cpu(magnet_home, tmp_path):
    """`accelerate launch -m magnet_assets.cli_train sft`, one CPU process: the cluster entry point runs."""
    storage = magnet_home / "storage"
    storage.mkdir(parents=True)
    to_frame(sft_rows(1, 1), Trajectory).with_columns(split=pl.lit("train")).write_parquet(storage / "sft_set.parquet")
    env = {**__import__("os").environ, "MAGNET_TRAIN_MAX_STEPS": "2", "MAGNET_TRAIN_MAX_LENGTH": "4096"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "magnet_assets.cli_train",
        "sft",
        "--home",
        str(magnet_home),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (magnet_home / "checkpoints" / "sft" / "loss_curve.json").exists()
