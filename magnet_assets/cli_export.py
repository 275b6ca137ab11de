"""``magnet export``: write the SFT set in a training framework's format, with its report.

    magnet export --format hf --out DIR        # datasets.load_from_disk(DIR/dataset); TRL SFTTrainer
    magnet export --format sharegpt --out DIR  # LLaMA-Factory (dataset_info.json included)
    magnet export --format bfcl --out DIR      # BFCL v3 entries, possible answers and function docs

Reads ``$MAGNET_HOME/storage/sft_set.parquet`` (and the ``query_call_pairs`` partitions for
the report's reject reasons); writes ``DIR/report.md`` beside the data.
"""

from __future__ import annotations

from pathlib import Path

import typer


def load_export_inputs(home: Path | None = None):
    """(sft_set rows, episodes, mix report) from a Magnet home; raises FileNotFoundError
    with what to run when the set has not been built."""
    import polars as pl

    from magnet_lib.distillation.mixing import MixReport, SFTExample
    from magnet_lib.models import Episode
    from magnet_lib.settings import load_settings
    from magnet_lib.tables import from_frame

    settings = load_settings(**({"home": home} if home else {}))
    path = settings.storage_dir / "sft_set.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no SFT set at {path}; run `magnet run` first (or pass --home)")
    rows = from_frame(pl.read_parquet(path), SFTExample)
    episodes = []
    for part in sorted((settings.storage_dir / "query_call_pairs").glob("*.parquet")):
        episodes.extend(from_frame(pl.read_parquet(part), Episode))
    mix_path = settings.home / "reports" / "sft_set_mix.json"
    mix = MixReport.model_validate_json(mix_path.read_text()) if mix_path.is_file() else None
    return rows, episodes, mix


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_command(
        format: str = typer.Option(..., "--format", "-f", help="hf | sharegpt | bfcl"),
        out: Path = typer.Option(..., "--out", "-o", help="Folder to write (created if missing)."),
        home: Path = typer.Option(None, help="Magnet home (default $MAGNET_HOME or ./.magnet)."),
        arguments: str = typer.Option("object", help="hf only: tool-call arguments as 'object' (HF chat templates) or 'string' (OpenAI)."),
    ) -> None:
        """Export the SFT set (train and held-out splits) and its data quality report."""
        from rich.console import Console

        from magnet_lib.distillation.export import FORMATS, export
        from magnet_lib.distillation.mixing import SFTExample
        from magnet_lib.distillation.quality import quality_report
        from magnet_lib.lint.report import lint_tables
        from magnet_lib.settings import load_settings
        from magnet_lib.tables import to_frame

        console = Console()
        if format not in FORMATS:
            console.print(f"[red]unknown format '{format}'[/]; choose one of {', '.join(FORMATS)}")
            raise typer.Exit(2)
        try:
            rows, episodes, mix = load_export_inputs(home)
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        lint = lint_tables(sft_set=to_frame(rows, SFTExample), thresholds=load_settings(**({"home": home} if home else {})).lint)
        report = quality_report(rows, episodes, mix, lint)
        written = export(rows, format, out, report.to_markdown(), arguments, episodes)
        splits = report.items_by_kind
        counts = ", ".join(f"{split}: {sum(k.values())}" for split, k in splits.items())
        console.print(f"[green]exported[/] {len(rows)} items ({counts}) as {format} to {out}")
        for path in written:
            console.print(f"  {path}")
        if report.calls and report.executable_calls != report.calls:
            console.print(f"[yellow]warning[/]: {report.calls - report.executable_calls} calls returned an error output")
