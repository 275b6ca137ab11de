"""``magnet eval``: the multi-turn evaluation of the ``eval_report`` asset on any checkpoint
folder or served model, from the tables of a home.

    magnet eval                                        # base, sft and mdpo of the home
    magnet eval --checkpoint ckpt/sft --checkpoint ckpt/mdpo --episodes 50
    magnet eval --model hosted_vllm/magnet-mdpo --api-base http://127.0.0.1:8000/v1

A served model is asked through the LLM layer (task ``student_step``; serve it without a
tool-call parser so calls come back as text, see :mod:`magnet_lib.training.student`).
"""

from __future__ import annotations

from pathlib import Path

import typer


def _load_references(settings, episodes: int | None):
    import polars as pl

    from magnet_lib.evaluation.multi_turn import evaluation_references
    from magnet_lib.models import Episode
    from magnet_lib.tables import from_frame
    from magnet_lib.training.sft import effective_train

    sft_set = settings.storage_dir / "sft_set.parquet"
    pairs = sorted((settings.storage_dir / "query_call_pairs").glob("*.parquet"))
    if not sft_set.is_file() or not pairs:
        raise FileNotFoundError(f"no sft_set / query_call_pairs tables under {settings.storage_dir}")
    eps = [e for p in pairs for e in from_frame(pl.read_parquet(p), Episode)]
    limit = episodes if episodes is not None else effective_train(settings).eval_episodes
    return evaluation_references(pl.read_parquet(sft_set), eps, limit, settings.seed)


def _models(settings, checkpoints: list[Path], served: list[str], api_base: str | None) -> dict:
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.training.sft import effective_train
    from magnet_lib.training.student import ServedStudent, TransformersStudent

    train = effective_train(settings)
    if not checkpoints and not served:
        checkpoints = [settings.checkpoints_dir / name for name in ("base", "sft", "mdpo")]
    models: dict = {}
    for path in checkpoints:
        name = path.name if path.name not in models else str(path)
        models[name] = lambda path=path: TransformersStudent(
            path, max_new_tokens=train.student_max_new_tokens, temperature=0.0, seed=settings.seed
        )
    for model in served:
        llm = settings.llm.model_copy(update={"model": model, "api_base": api_base or settings.llm.api_base, "task_models": {}})
        models[model] = lambda llm=llm: ServedStudent(
            TaskRunner(llm, cache_dir=settings.cache_dir),
            max_new_tokens=train.student_max_new_tokens,
            temperature=0.0,
            native_tools=train.student_native_tools,
        )
    return models


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        checkpoint: list[Path] = typer.Option(None, "--checkpoint", help="A checkpoint folder to evaluate (repeatable)."),
        model: list[str] = typer.Option(None, "--model", help="A served model as a LiteLLM model string (repeatable)."),
        api_base: str = typer.Option(None, help="Base URL of the server of --model (default: the LLM settings' api_base)."),
        episodes: int = typer.Option(None, help="Episodes to evaluate (default: train.eval_episodes)."),
        output: Path = typer.Option(
            None, help="Folder to write eval_report.md and eval_report.json to (default $MAGNET_HOME/reports/eval_cli)."
        ),
        home: Path = typer.Option(None, help="Magnet home (default $MAGNET_HOME or ./.magnet)."),
        bfcl: bool = typer.Option(False, "--bfcl", help="BFCL v3's official evaluation instead (needs bfcl-eval, see the README)."),
        reference: bool = typer.Option(
            False, "--reference", help="With --bfcl: BFCL's ground truth as the model (a harness self-check: 1.0)."
        ),
        categories: str = typer.Option(None, help="With --bfcl: comma-separated BFCL categories (default: 4 multi-turn + 5 single-turn)."),
        limit: int = typer.Option(None, help="With --bfcl: the first N entries of each category (default: all)."),
        style: str = typer.Option(
            None, help="With --bfcl: 'prompting' (call strings) or 'fc' (native tools); default fc for checkpoints, prompting for --model."
        ),
    ) -> None:
        """Replay the held-out multi-turn episodes with each model (greedy, calls executed),
        judge every turn and print turn accuracy, episode success and progress rate. With
        --bfcl: BFCL's categories scored by BFCL's checkers, bfcl_scores.json and .md in
        --output (default $MAGNET_HOME/reports)."""
        if bfcl:
            from magnet_assets.cli_bfcl import run_bfcl
            from magnet_lib.settings import load_settings

            run_bfcl(
                load_settings(**({"home": home} if home else {})),
                checkpoints=checkpoint or [],
                served=model or [],
                api_base=api_base,
                reference=reference,
                categories=categories,
                limit=limit,
                style=style,
                output=output,
            )
            return
        from rich.console import Console
        from rich.table import Table

        from magnet_assets.evaluation import write_report
        from magnet_lib.evaluation.multi_turn import KINDS, evaluate
        from magnet_lib.llm.runner import TaskRunner
        from magnet_lib.settings import load_settings
        from magnet_lib.training.hints import tool_pool
        from magnet_lib.training.sft import effective_train

        console = Console()
        settings = load_settings(**({"home": home} if home else {}))
        try:
            refs, split, notes = _load_references(settings, episodes)
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/]; run `magnet run` first (or pass --home)")
            raise typer.Exit(1) from None
        runner = TaskRunner(settings.llm, cache_dir=settings.cache_dir)
        train = effective_train(settings)
        try:
            report = evaluate(
                _models(settings, checkpoint or [], model or [], api_base),
                refs,
                tool_pool(settings),
                runner,
                max_steps=max(train.student_max_steps, settings.graph.max_calls_per_turn + 1),
                split=split,
                notes=notes,
            )
        finally:
            runner.close()
        for note in report.notes:
            console.print(f"[yellow]{note}[/]")
        title = f"multi-turn evaluation: {len(report.episodes)} {split} episodes, judge {report.judge}"
        summary = Table(title=title)
        for col in ("model", "episode success", "progress rate", "turn accuracy", "unusable", "not reached"):
            summary.add_column(col, justify="left" if col == "model" else "right")
        for m in report.models:
            rates = [report.value(m, metric) for metric in ("episode_success", "progress_rate", "turn_accuracy")]
            summary.add_row(m, *[f"{v:.3f}" for v in rates], *[str(int(report.value(m, c) or 0)) for c in ("unusable", "not_reached")])
        console.print(summary)
        by_kind = Table(title="turn accuracy by kind (n turns)")
        by_kind.add_column("kind")
        for m in report.models:
            by_kind.add_column(m, justify="right")
        for kind in KINDS:
            n = next((r.n for r in report.metrics if r.metric == "turn_accuracy" and r.kind == kind), 0)
            if n:
                by_kind.add_row(f"{kind} ({n})", *[f"{report.value(m, 'turn_accuracy', kind):.3f}" for m in report.models])
        console.print(by_kind)
        # the CLI's own folder by default: the eval_report asset's report in reports/ stays as it was
        md, js = write_report(report, output if output is not None else settings.home / "reports" / "eval_cli")
        console.print(f"wrote the report to {md} and {js}")
        if not report.models:
            raise typer.Exit(1)
