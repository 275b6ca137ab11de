"""``magnet lint PATH...``: the data lint over any tool-use dataset.

    magnet lint $MAGNET_HOME/storage/sft_set.parquet $MAGNET_HOME/storage/mdpo_pairs.parquet
    magnet lint export/hf/dataset          # a Hugging Face save_to_disk folder
    magnet lint data.jsonl --json          # OpenAI-style {"messages", "tools"} records, or pairs

Prints the figures (and examples of what failed); exits 1 when a blocking figure fails
(``lint.blocking`` in the settings), 0 otherwise, or 1 on any failure with ``--strict``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("lint")
    def lint_command(
        paths: list[Path] = typer.Argument(..., help="Files (parquet, jsonl, json) or folders (HF save_to_disk, exports)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when any figure fails its threshold."),
        pool: Path = typer.Option(None, help="A file with the pool's function names, one a line (default: the functions the items offer)."),
        home: Path = typer.Option(None, help="Magnet home whose magnet.toml holds the [lint] thresholds."),
    ) -> None:
        """Measure the defects of a tool-use dataset from the data itself."""
        from rich.console import Console

        from magnet_lib.lint import lint, load
        from magnet_lib.settings import load_settings

        console = Console()
        missing = [p for p in paths if not p.exists()]
        if missing:
            console.print(f"[red]not found[/]: {', '.join(map(str, missing))}")
            raise typer.Exit(2)
        settings = load_settings(**({"home": home} if home else {}))
        data = load(paths)
        if pool is not None:
            data.pool = [line.strip() for line in pool.read_text().splitlines() if line.strip()]
        report = lint(data, settings.lint)
        if as_json:
            typer.echo(json.dumps(report.model_dump(), indent=2))
        else:
            console.print(f"[bold]magnet lint[/]: {len(data.items)} items, {len(data.pairs)} pairs")
            typer.echo(report.to_markdown())
        if report.blocking_failed or (strict and report.failed):
            raise typer.Exit(1)
