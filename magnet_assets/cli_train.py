"""``magnet train sft|mdpo``: training outside Dagster, from the Parquet tables of a home.

    magnet train sft                                   # in this process, like the asset
    magnet train mdpo --data pairs.parquet --output ckpt/
    magnet train sft --accelerate configs/accelerate/fsdp.yaml --num-processes 8

With ``--accelerate`` the command becomes ``accelerate launch --config_file CONFIG -m
magnet_lib.training.sft ...`` (or ``magnet_lib.training.mdpo``), which is also what to run on each node of a
cluster; see docs/training.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

MODULES = {"sft": "magnet_lib.training.sft", "mdpo": "magnet_lib.training.mdpo"}


def launch_command(stage: str, accelerate_config: Path, num_processes: int | None, args: list[str]) -> list[str]:
    """The ``accelerate launch`` command line of a training stage."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config)]
    if num_processes:
        cmd += ["--num_processes", str(num_processes)]
    return cmd + ["-m", MODULES[stage], *args]


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(help="Train outside Dagster (SFT, mDPO), optionally under accelerate launch.", no_args_is_help=True)
    app.add_typer(train_app, name="train")

    def _run(
        stage: str,
        home: Path | None,
        config: Path | None,
        data: Path | None,
        output: Path | None,
        sft: Path | None,
        accelerate: Path | None,
        num_processes: int | None,
    ) -> None:
        from rich.console import Console

        console = Console()
        args: list[str] = []
        for flag, value in (("--home", home), ("--config", config), ("--data", data), ("--output", output), ("--sft", sft)):
            if value is not None:
                args += [flag, str(value)]
        if accelerate is not None:
            if not accelerate.is_file():
                console.print(f"[red]accelerate config {accelerate} not found[/]")
                raise typer.Exit(2)
            cmd = launch_command(stage, accelerate, num_processes, args)
            console.print("[dim]" + " ".join(cmd) + "[/]")
            raise typer.Exit(subprocess.call(cmd))
        module = __import__(MODULES[stage], fromlist=["main"])
        try:
            module.main(args)
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/]; run `magnet run` first (or pass --data / --home)")
            raise typer.Exit(1) from None

    common = {
        "home": typer.Option(None, help="Magnet home (default $MAGNET_HOME or ./.magnet)."),
        "config": typer.Option(None, help="Settings file (magnet.toml); default $MAGNET_CONFIG or <home>/magnet.toml."),
        "output": typer.Option(None, help="Checkpoint folder (default <home>/checkpoints/<stage>)."),
        "accelerate": typer.Option(None, help="accelerate config file: run under `accelerate launch` (configs/accelerate/*.yaml)."),
        "num_processes": typer.Option(None, help="Processes for accelerate launch (default: the config's)."),
    }

    @train_app.command("sft")
    def train_sft_command(
        home: Path = common["home"],
        config: Path = common["config"],
        data: Path = typer.Option(None, help="sft_set Parquet file (default <home>/storage/sft_set.parquet)."),
        output: Path = common["output"],
        accelerate: Path = common["accelerate"],
        num_processes: int = common["num_processes"],
    ) -> None:
        """SFT of the base model (train.base_model) on the train split of sft_set."""
        _run("sft", home, config, data, output, None, accelerate, num_processes)

    @train_app.command("mdpo")
    def train_mdpo_command(
        home: Path = common["home"],
        config: Path = common["config"],
        data: Path = typer.Option(None, help="mdpo_pairs Parquet file (default <home>/storage/mdpo_pairs.parquet)."),
        sft: Path = typer.Option(None, help="SFT checkpoint: the policy's start and the reference (default <home>/checkpoints/sft)."),
        output: Path = common["output"],
        accelerate: Path = common["accelerate"],
        num_processes: int = common["num_processes"],
    ) -> None:
        """mDPO of the SFT checkpoint on mdpo_pairs (beta, lambda, LoRA from the settings)."""
        _run("mdpo", home, config, data, output, sft, accelerate, num_processes)
