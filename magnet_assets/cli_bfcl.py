"""``magnet eval --bfcl``: BFCL v3's official evaluation (its data, protocol and checkers, from
the ``bfcl-eval`` package) of checkpoint folders, served models or BFCL's own ground truth.

    magnet eval --bfcl --reference --categories multi_turn_base --limit 20 --output out/
    magnet eval --bfcl --checkpoint .magnet/checkpoints/sft --limit 5
    magnet eval --bfcl --model hosted_vllm/Qwen/Qwen2.5-7B-Instruct --api-base http://127.0.0.1:8000/v1 --style fc

See :mod:`magnet_lib.evaluation.bfcl`.
"""

from __future__ import annotations

from pathlib import Path

import typer


def backends(settings, checkpoints: list[Path], served: list[str], api_base: str | None, reference: bool, style: str | None) -> dict:
    """name -> a function making the backend (checkpoints load lazily, one at a time)."""
    from magnet_lib.evaluation import bfcl
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.training.sft import effective_train

    train = effective_train(settings)
    out: dict = {}
    if reference:
        out["reference"] = lambda: bfcl.ReferenceBackend(style or "prompting")
    for path in checkpoints:
        name = path.name if path.name not in out else str(path)
        out[name] = lambda path=path: bfcl.TransformersBackend(
            path, style or "fc", max_new_tokens=train.student_max_new_tokens, seed=settings.seed
        )
    for model in served:
        llm = settings.llm.model_copy(update={"model": model, "api_base": api_base or settings.llm.api_base, "task_models": {}})
        out[model] = lambda llm=llm, model=model: bfcl.ServedBackend(
            TaskRunner(llm, cache_dir=settings.cache_dir), style or "prompting", name=model
        )
    return out


def run_bfcl(
    settings,
    *,
    checkpoints: list[Path],
    served: list[str],
    api_base: str | None,
    reference: bool,
    categories: str | None,
    limit: int | None,
    style: str | None,
    output: Path | None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from magnet_lib.evaluation import bfcl

    console = Console()
    reason = bfcl.unavailable_reason()
    if reason:
        console.print(f"[red]{reason}[/]")
        raise typer.Exit(1)
    cats = [c.strip() for c in categories.split(",") if c.strip()] if categories else list(bfcl.DEFAULT_CATEGORIES)
    unknown = [c for c in cats if c not in bfcl.DEFAULT_CATEGORIES]
    if unknown:
        console.print(f"[red]unsupported categories: {', '.join(unknown)}[/]; choose from {', '.join(bfcl.DEFAULT_CATEGORIES)}")
        raise typer.Exit(2)
    if style is not None and style not in bfcl.STYLES:
        console.print(f"[red]--style must be one of {', '.join(bfcl.STYLES)}[/]")
        raise typer.Exit(2)
    if not checkpoints and not served and not reference:
        checkpoints = [p for p in (settings.checkpoints_dir / n for n in ("base", "sft", "mdpo")) if p.is_dir()]
        if not checkpoints:
            console.print("[red]nothing to evaluate[/]: pass --checkpoint, --model or --reference (no checkpoints in the home)")
            raise typer.Exit(1)
    reports = []
    for name, make in backends(settings, checkpoints, served, api_base, reference, style).items():
        try:
            backend = make()
        except Exception as exc:  # a checkpoint that is missing or does not load
            console.print(f"[yellow]{name}: not evaluated, it could not be loaded ({type(exc).__name__}: {str(exc)[:200]})[/]")
            continue
        console.print(f"{name}: {backend.style} style, categories {', '.join(cats)}" + (f", first {limit} entries each" if limit else ""))
        report = bfcl.evaluate(
            backend, cats, limit, progress=lambda c, d, n: console.print(f"  {c}: {d}/{n}", highlight=False) if d == n else None
        )
        report.model = name
        reports.append(report)
        runner = getattr(backend, "runner", None)
        if runner is not None:
            stats = runner.metadata().get("bfcl_step", {})
            console.print(f"  requests {stats.get('calls', 0)}, cache hits {stats.get('cache_hits', 0)}, rejects {stats.get('rejects', 0)}")
            runner.close()
        del backend
    if not reports:
        raise typer.Exit(1)
    table = Table(title=f"BFCL (bfcl-eval {bfcl.version()})")
    table.add_column("category")
    table.add_column("n", justify="right")
    for r in reports:
        table.add_column(f"{r.model} ({r.style})", justify="right")
    for row in bfcl.scores_table(reports):
        table.add_row(*row)
    console.print(table)
    for note in sorted({n for r in reports for n in r.notes}):
        console.print(f"[yellow]{note}[/]")
    js, md = bfcl.write_report(reports, output or settings.home / "reports", limit=limit)
    console.print(f"BFCL scores written to {js} and {md}")
