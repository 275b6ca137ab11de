"""The ``magnet`` command line.

``magnet run`` materializes the pipeline headless on the persistent Dagster instance under
``$MAGNET_HOME/dagster``; ``magnet ui`` serves the Dagster UI over the same instance, so runs
made from the CLI show up there. Stage modules add their own sub-commands through a
``register(app)`` function (graph, export, train).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Dagster flags beta APIs (observable source assets) on every import; users can't act on it.
warnings.filterwarnings("ignore", message=".*is currently in beta.*")
warnings.filterwarnings("ignore", message=".*is currently in preview.*")

app = typer.Typer(help="Magnet: multi-turn tool-use data synthesis and distillation.", no_args_is_help=True, add_completion=False)
console = Console()

# Sub-command modules, each with `register(app)`; absent ones are stages not built yet.
COMMAND_MODULES = ["cli_graph", "cli_export", "cli_train", "cli_eval", "cli_lint"]


def _settings(home: Path | None = None, tools_dir: Path | None = None):
    from magnet_lib.settings import load_settings

    overrides = {}
    if home is not None:
        overrides["home"] = home
    if tools_dir is not None:
        overrides["tools_dir"] = tools_dir
    return load_settings(**overrides)


@app.command()
def run(
    all_: bool = typer.Option(False, "--all", help="Re-materialize everything, not only what is missing or stale."),
    asset: list[str] = typer.Option(None, "--asset", "-a", help="Only this asset and its upstream (repeatable)."),
    category: list[str] = typer.Option(None, "--category", "-c", help="Only these category partitions (repeatable)."),
    home: Path = typer.Option(None, help="Magnet home (default $MAGNET_HOME or ./.magnet)."),
    tools_dir: Path = typer.Option(None, help="User tool specs (default $MAGNET_TOOLS_DIR)."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also show the training libraries' progress bars, warnings and per-step logs."
    ),
) -> None:
    """Materialize every asset partition Dagster calls stale or missing (the UI's
    'Unsynced' and 'Missing'), then print a summary; exit 1 if anything failed."""
    import time

    from magnet_assets import forkserver

    started = time.perf_counter()
    settings = _settings(home, tools_dir)
    # a fresh home runs every category in workers: their server imports while this process does
    if not category or len(category) > 1:  # one category runs in this process
        forkserver.start_early(settings.run.executor, settings.run.max_concurrent, settings.dagster_home)
    from magnet_assets.orchestrate import EndpointUnreachable, run_pipeline

    forkserver.tune_collector()  # this process runs the unpartitioned steps and single-category runs
    if verbose:  # the steps that train read it (loss curves go to loss_curve.json and the metadata either way)
        settings = settings.model_copy(update={"run": settings.run.model_copy(update={"verbose": True})})
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home.resolve()))
    mode = f"model {settings.llm.model}" if settings.llm.model else "offline (no model configured)"
    console.print(f"[bold]magnet run[/] home={settings.home} · {mode} · executor {settings.run.executor}")
    done: dict[str, int] = defaultdict(int)
    shown: set[tuple] = set()

    def on_step(step) -> None:
        if step.status == "skipped":
            return
        done[step.asset] += 1
        if step.step_key and (step.run_id, step.step_key) in shown:
            return  # assets made by one step: one line, one time
        shown.add((step.run_id, step.step_key))
        names = "+".join(step.shares) if step.shares else step.asset
        where = escape(f"[{step.partition}]") if step.partition else ""
        style = {"materialized": "green", "checked": "green", "failed": "red", "blocked": "yellow"}[step.status]
        llm = step.llm or {}
        calls = ""
        if llm.get("calls") or llm.get("failures") or llm.get("rejects"):
            calls = f"  llm {llm.get('calls', 0)} calls, {llm.get('failures', 0)} failed, {llm.get('rejects', 0)} rejects"
            items = llm.get("items") or 0
            if items and llm.get("rejects", 0) / items > 0.5:
                calls += " [red](over half rejected)[/]"
        console.print(
            f"  [{style}]{step.status:<12}[/] {names}{where} {step.seconds:6.1f}s · {step.asset} {done[step.asset]} done · "
            f"{time.perf_counter() - started:6.1f}s elapsed{calls}" + (f"  {escape(step.error[:300])}" if step.error else ""),
            soft_wrap=True,
        )

    try:
        summary = run_pipeline(settings, force=all_, assets=asset or None, categories=category or None, on_step=on_step)
    except EndpointUnreachable as exc:
        console.print(f"[red]stopped before any step:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    table = Table(title="magnet run summary")
    for col in ("asset", "materialized", "skipped", "failed"):
        table.add_column(col, justify="left" if col == "asset" else "right")
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    order: list[str] = []
    for step in summary.steps:
        if step.asset not in counts:
            order.append(step.asset)
        column = {"failed": "failed", "blocked": "failed", "checked": "materialized"}.get(step.status, step.status)
        counts[step.asset][column] += 1  # a lint run again on its own counts as done
    for name in order:
        c = counts[name]
        table.add_row(name, str(c["materialized"]), str(c["skipped"]), f"[red]{c['failed']}[/]" if c["failed"] else "0")
    console.print(table)
    console.print(
        f"{len(summary.materialized())} asset partition(s) materialized in {summary.seconds:.1f}s · outputs: "
        f"{settings.storage_dir} (tables), {settings.home / 'reports'} (reports), {settings.checkpoints_dir} (models), "
        f"{settings.graph_path} (graph)"
    )
    rejected = tool_problems(settings)
    if rejected:
        console.print(f"[yellow]{rejected} tool spec problem(s)[/]: `magnet pool --rejects` lists file, tool, field and reason.")
    if summary.failed:
        console.print(f"[red]{len(summary.failed)} asset partition(s) failed[/]; see `magnet ui` for the run logs.")
        raise typer.Exit(1)


def tool_problems(settings) -> int:
    """The rejects ``magnet pool --rejects`` lists: each category's (its ``tool_rejects``
    table) plus the files and folders of the tools folder that belong to no category."""
    import polars as pl

    from magnet_lib.pool.function_pool import layout_rejects

    reject_files = sorted((settings.storage_dir / "tool_rejects").glob("*.parquet"))
    return sum(pl.read_parquet(f).height for f in reject_files) + len(layout_rejects(settings))


@app.command()
def ui(
    port: int = typer.Option(3000, help="Port of the Dagster UI on 127.0.0.1."),
    home: Path = typer.Option(None, help="Magnet home (default $MAGNET_HOME or ./.magnet)."),
) -> None:
    """Serve the Dagster UI (dagster dev) on 127.0.0.1 over the same instance as `magnet run`."""
    from magnet_assets.orchestrate import open_instance

    settings = _settings(home)
    open_instance(settings)  # creates $MAGNET_HOME/dagster with its dagster.yaml
    env = dict(os.environ, DAGSTER_HOME=str(settings.dagster_home.resolve()), MAGNET_HOME=str(settings.home.resolve()))
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", "magnet_assets.definitions"]
    cmd = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port), *target]
    console.print(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={env['DAGSTER_HOME']})")
    raise typer.Exit(serve(cmd, env, str(workspace.parent)))


def serve(cmd: list[str], env: dict, cwd: str, grace_s: float = 10.0) -> int:
    """Run ``dagster dev`` in its own process group; on SIGTERM or SIGINT stop the whole group
    (webserver, daemon, code servers), waiting ``grace_s`` before killing what is left."""
    import signal

    child = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True)

    def stop(signum, frame) -> None:
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            try:
                child.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # the group's other members (code servers) may outlive the leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def pool(
    category: str = typer.Option(None, "--category", "-c", help="Only this category."),
    rejects: bool = typer.Option(False, "--rejects", help="List the rejected specs instead of the tools."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    home: Path = typer.Option(None, help="Magnet home."),
    tools_dir: Path = typer.Option(None, help="User tool specs (default $MAGNET_TOOLS_DIR)."),
) -> None:
    """List the function pool (built-in and imported tools) or the specs that were rejected."""
    from magnet_lib.pool.function_pool import discover_categories, layout_rejects, load_category

    settings = _settings(home, tools_dir)
    sources = discover_categories(settings)
    if category and category not in sources:
        console.print(f"[red]unknown category '{escape(category)}'[/]; known: {', '.join(sorted(sources))}")
        raise typer.Exit(1)
    cats = [category] if category else sorted(sources)
    tools: list = []
    bad = [] if category else layout_rejects(settings)  # files and folders that belong to no category
    for cat in cats:
        part = load_category(settings, cat, sources)
        tools.extend(part.tools)
        bad.extend(part.rejects)
    if as_json:
        rows = [r.model_dump() for r in (bad if rejects else tools)]
        typer.echo(json.dumps(rows, indent=2))
        return
    if rejects:
        table = Table(title=f"{_count(len(bad), 'reject')}: tool specs, files and folders not used")
        for col in ("category", "file", "tool", "field", "message"):
            table.add_column(col, overflow="fold")
        for r in bad:
            table.add_row(*(escape(v) for v in (r.category, r.file, r.tool, r.field, r.message)))
    else:
        table = Table(title=f"{_count(len(tools), 'tool')} in {_count(len(cats), 'category', 'categories')} ({len(bad)} rejected)")
        for col in ("category", "name", "class", "executable", "description"):
            table.add_column(col, overflow="fold")
        for t in tools:
            cells = (t.category, t.name, t.tool_class, "yes" if t.executable else "simulated", shorten(t.description, 70))
            table.add_row(*(escape(v) for v in cells))
    console.print(table)


def _count(n: int, one: str, many: str | None = None) -> str:
    """'1 category', '6 categories'."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut at a word boundary with an ellipsis when longer than ``width``."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    if " " in cut and line[width - 1] != " ":
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def _register_subcommands() -> None:
    for name in COMMAND_MODULES:
        qualified = f"magnet_assets.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise
            continue
        module.register(app)


_register_subcommands()


def main() -> None:
    try:
        app()
    finally:
        # The interpreter's teardown runs the cycle collector over every object Dagster and
        # pydantic made: 1.3 s of a 5 s no-op `magnet run` on 2 cores. Frozen objects are left to
        # the end of the process; reference-counted ones are still finalized, atexit still runs.
        gc.freeze()


if __name__ == "__main__":
    main()
