"""``magnet train sft|mdpo``: training outside Dagster, from the Parquet tables of a home.

    magnet train sft                                   # in this process, like the asset
    magnet train mdpo --data pairs.parquet --output ckpt/
    magnet train sft --accelerate configs/accelerate/fsdp.yaml --num-processes 8

The commands call the library's :func:`~magnet_lib.training.sft.train_sft` and
:func:`~magnet_lib.training.mdpo.train_mdpo` on the tables. With ``--accelerate`` the command
becomes ``accelerate launch --config_file CONFIG -m magnet_assets.cli_train sft ...`` (this
module is its own entry point, with the same options), which is also what to run on each node
of a cluster; see docs/training.md. Nothing here imports Dagster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

#: ``python -m`` target of ``accelerate launch``: this module.
ENTRY_POINT = "magnet_assets.cli_train"
STAGES = ("sft", "mdpo")

app = typer.Typer(help="Train outside Dagster (SFT, mDPO), optionally under accelerate launch.", no_args_is_help=True)


def launch_command(stage: str, accelerate_config: Path, num_processes: int | None, args: list[str]) -> list[str]:
    """The ``accelerate launch`` command line of a training stage."""
    if stage not in STAGES:
        raise ValueError(f"unknown training stage {stage!r}; one of {', '.join(STAGES)}")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config)]
    if num_processes:
        cmd += ["--num_processes", str(num_processes)]
    return cmd + ["-m", ENTRY_POINT, stage, *args]


def cli_settings(home: Path | None, config: Path | None):
    """The settings of a command: ``config`` is the settings file (else ``$MAGNET_CONFIG`` or
    ``<home>/magnet.toml``), ``home`` the Magnet home (else ``$MAGNET_HOME`` or ``./.magnet``)."""
    from magnet_lib.settings import load_settings

    if config:
        os.environ["MAGNET_CONFIG"] = str(Path(config).expanduser())
    return load_settings(**({"home": str(home)} if home else {}))


def read_table(path: Path, name: str):
    import polars as pl

    if not path.is_file():
        raise FileNotFoundError(f"no {name} table at {path}")
    return pl.read_parquet(path)


def _launch_or_none(stage: str, accelerate: Path | None, num_processes: int | None, options: dict[str, Path | None]) -> None:
    """Under ``--accelerate``: run the stage under accelerate launch and exit with its status."""
    if accelerate is None:
        return
    from rich.console import Console

    console = Console()
    if not accelerate.is_file():
        console.print(f"[red]accelerate config {accelerate} not found[/]")
        raise typer.Exit(2)
    args = [item for flag, value in options.items() if value is not None for item in (f"--{flag}", str(value))]
    cmd = launch_command(stage, accelerate, num_processes, args)
    console.print("[dim]" + " ".join(cmd) + "[/]")
    raise typer.Exit(subprocess.call(cmd))


def _report(result: Any) -> None:
    print(json.dumps({"path": str(result.path), **result.metrics}, indent=2, default=str))


def _missing(exc: FileNotFoundError) -> typer.Exit:
    from rich.console import Console

    Console().print(f"[red]{exc}[/]; run `magnet run` first (or pass --data / --home)")
    return typer.Exit(1)


HOME = typer.Option(None, help="Magnet home (default $MAGNET_HOME or ./.magnet).")
CONFIG = typer.Option(None, help="Settings file (magnet.toml); default $MAGNET_CONFIG or <home>/magnet.toml.")
OUTPUT = typer.Option(None, help="Checkpoint folder (default <home>/checkpoints/<stage>).")
ACCELERATE = typer.Option(None, help="accelerate config file: run under `accelerate launch` (configs/accelerate/*.yaml).")
NUM_PROCESSES = typer.Option(None, help="Processes for accelerate launch (default: the config's).")


@app.command("sft")
def train_sft_command(
    home: Path = HOME,
    config: Path = CONFIG,
    data: Path = typer.Option(None, help="sft_set Parquet file (default <home>/storage/sft_set.parquet)."),
    output: Path = OUTPUT,
    accelerate: Path = ACCELERATE,
    num_processes: int = NUM_PROCESSES,
) -> None:
    """SFT of the base model (train.base_model) on the train split of sft_set."""
    _launch_or_none("sft", accelerate, num_processes, {"home": home, "config": config, "data": data, "output": output})
    from magnet_lib.training.sft import train_sft, training_output

    training_output(verbose=True)
    settings = cli_settings(home, config)
    try:
        rows = read_table(data or settings.storage_dir / "sft_set.parquet", "sft_set")
    except FileNotFoundError as exc:
        raise _missing(exc) from None
    _report(train_sft(settings, rows, output))


@app.command("mdpo")
def train_mdpo_command(
    home: Path = HOME,
    config: Path = CONFIG,
    data: Path = typer.Option(None, help="mdpo_pairs Parquet file (default <home>/storage/mdpo_pairs.parquet)."),
    sft: Path = typer.Option(None, help="SFT checkpoint: the policy's start and the reference (default <home>/checkpoints/sft)."),
    output: Path = OUTPUT,
    accelerate: Path = ACCELERATE,
    num_processes: int = NUM_PROCESSES,
) -> None:
    """mDPO of the SFT checkpoint on mdpo_pairs (beta, lambda, LoRA from the settings)."""
    options = {"home": home, "config": config, "data": data, "sft": sft, "output": output}
    _launch_or_none("mdpo", accelerate, num_processes, options)
    from magnet_lib.training.mdpo import train_mdpo
    from magnet_lib.training.sft import training_output

    training_output(verbose=True)
    settings = cli_settings(home, config)
    try:
        rows = read_table(data or settings.storage_dir / "mdpo_pairs.parquet", "mdpo_pairs")
    except FileNotFoundError as exc:
        raise _missing(exc) from None
    _report(train_mdpo(settings, rows, sft, output))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="train")


if __name__ == "__main__":  # accelerate launch -m magnet_assets.cli_train sft|mdpo ...
    app()
