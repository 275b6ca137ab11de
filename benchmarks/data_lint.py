"""The data lint's figures on the default run and on the 5,000-tool synthetic pool.

    python -m benchmarks.data_lint home LABEL HOME          # lint HOME/storage/{sft_set,mdpo_pairs}
    python -m benchmarks.data_lint synth LABEL [--tools 5000] [--dump FILE]
    python -m benchmarks.data_lint lint LABEL FILE           # lint a dump made by `synth --dump`

``home`` reads a finished ``magnet run`` (the seeded default run) and adds the translation's
acceptance from its ``query_call_pairs``. ``synth`` translates and distills the spec-only pool
of :mod:`benchmarks.synthetic_pool` offline (multi-turn, single-turn and irrelevance items, as
the assets would) and lints the items; ``--dump`` writes them as JSONL first, so that the
generation can run on another checkout (``PYTHONPATH=/path/to/main python benchmarks/data_lint.py
synth before --dump f.jsonl``, then ``lint before f.jsonl`` here). Each LABEL's figures go to
``benchmarks/results/data_lint.json`` under ``default_run`` or ``synthetic_pool``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
RESULTS = Path(__file__).resolve().parent / "results" / "data_lint.json"
KEEP = ("count", "total", "share")


def _figures(report) -> dict:
    return {k: {x: v[x] for x in KEEP} for k, v in report.figures.items()}


def _acceptance(home: Path) -> dict:
    import polars as pl

    parts = sorted((home / "storage" / "query_call_pairs").glob("*.parquet"))
    if not parts:
        return {}
    frame = pl.concat([pl.read_parquet(p).select("status") for p in parts])
    ok = frame.filter(pl.col("status") == "ok").height
    return {"episodes": frame.height, "accepted": ok, "accept_rate": round(ok / frame.height, 4) if frame.height else 0.0}


def lint_home(home: Path) -> dict:
    import polars as pl

    from magnet_lib.lint.report import lint_tables

    storage = home / "storage"
    sft = pl.read_parquet(storage / "sft_set.parquet")
    pairs = pl.read_parquet(storage / "mdpo_pairs.parquet") if (storage / "mdpo_pairs.parquet").is_file() else None
    report = lint_tables(sft, pairs)
    figures = _figures(report)
    figures["hf_export_duplicated_tool_json"] = _hf_export_duplicates(sft)
    return {
        "home": str(home),
        "items": sft.height,
        "pairs": 0 if pairs is None else pairs.height,
        **_acceptance(home),
        "figures": figures,
    }


def _hf_export_duplicates(sft) -> dict:
    """The duplicated-tool-JSON figure on the rows as ``magnet export --format hf`` writes them."""
    from magnet_lib.distillation.export import hf_record
    from magnet_lib.distillation.mixing import SFTExample
    from magnet_lib.lint import from_records, lint
    from magnet_lib.tables import from_frame

    records = [hf_record(r) for r in from_frame(sft, SFTExample)]
    fig = lint(from_records(records), rules=["exports"]).figures["duplicated_tool_json"]
    return {x: fig[x] for x in KEEP}


def synth_records(tools_total: int) -> tuple[list[dict], dict]:
    """Multi-turn, single-turn and irrelevance items of the synthetic pool, as dicts."""
    sys.path.insert(0, str(Path.cwd()))
    from benchmarks.translation_throughput import generated_pool
    from magnet_lib.distillation.single_turn import item_counts, make_single_turn
    from magnet_lib.distillation.teacher import distill
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.settings import load_settings
    from magnet_lib.translation.episodes import translate
    from tests.translation_fixtures import augmented_for

    settings = load_settings()
    categories, _ = generated_pool(tools_total)
    records: list[dict] = []
    episodes = accepted = 0
    start = time.perf_counter()
    for _cat, tools in categories.items():
        runner = TaskRunner(settings.llm)
        eps = translate(augmented_for(tools, settings, runner), tools, settings, runner)
        episodes += len(eps)
        accepted += sum(e.status == "ok" for e in eps)
        trajectories = [r.trajectory for r in distill(eps, tools, runner) if r.trajectory is not None]
        made, _ = make_single_turn(tools, item_counts(max(1, len(trajectories)), settings), settings, runner)
        runner.close()
        records.extend(t.model_dump(mode="json") for t in trajectories + made)
    stats = {
        "tools": sum(len(t) for t in categories.values()),
        "categories": len(categories),
        "episodes": episodes,
        "accepted": accepted,
        "accept_rate": round(accepted / episodes, 4) if episodes else 0.0,
        "items": len(records),
        "items_per_second": round(len(records) / (time.perf_counter() - start), 1),
    }
    return records, stats


def lint_records(records: list[dict], pool: list[str] | None = None) -> dict:
    from magnet_lib.lint import from_records, lint
    from magnet_lib.lint.data import Dataset

    return _figures(lint(from_records(records, Dataset(pool=pool))))


def _save(section: str, label: str, value: dict, command: str) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data.setdefault("commands", {})[f"{section}/{label}"] = command
    data.setdefault(section, {})[label] = value
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {section}/{label} to {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("home")
    h.add_argument("label")
    h.add_argument("home", type=Path)
    s = sub.add_parser("synth")
    s.add_argument("label")
    s.add_argument("--tools", type=int, default=5000)
    s.add_argument("--dump", type=Path)
    lf = sub.add_parser("lint")
    lf.add_argument("label")
    lf.add_argument("file", type=Path)
    ns = parser.parse_args()
    command = "python -m benchmarks.data_lint " + " ".join(sys.argv[1:])
    if ns.mode == "home":
        _save("default_run", ns.label, lint_home(ns.home), command)
    elif ns.mode == "synth":
        records, stats = synth_records(ns.tools)
        if ns.dump:
            ns.dump.write_text(json.dumps(stats) + "\n" + "".join(json.dumps(r) + "\n" for r in records))
            print(f"dumped {len(records)} items to {ns.dump}: {stats}")
            return
        _save("synthetic_pool", ns.label, {**stats, "figures": lint_records(records)}, command)
    else:
        lines = ns.file.read_text().splitlines()
        stats, records = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
        _save("synthetic_pool", ns.label, {**stats, "figures": lint_records(records)}, command)


if __name__ == "__main__":
    main()
