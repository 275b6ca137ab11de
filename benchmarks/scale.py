"""Items per second at a requested size: the offline data pipeline on the built-in pool
(offline judge -> walks -> Merge/Insert/Split -> translation -> distillation -> single-turn
and irrelevance items -> the SFT mix), sized by ``target_items`` as the assets size it.

    python -m benchmarks.scale [--targets default 4x] [--categories navigation weather] [--out FILE]

``default`` is the laptop-sized default run (``target_items`` unset: graph.walks_per_node);
a number sets ``target_items``; ``4x`` asks for four times the items the default size gave
(``--categories``: a part of the built-in pool, for a loaded machine). Each size is written
to the JSON as soon as it is done. Per size: the walks per node it gives, the items made, the
items in the SFT set (per kind), the walks wanted (walks per node x functions), drawn,
repeated (a path already taken: dropped, another drawn) and the distinct share, the
wall-clock seconds and items per second, with the command, the machine and its load. No Dagster and no Kuzu (the graph stage's library on an
in-memory adjacency, as tests/translation_fixtures.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"


def run_size(target: int | None, only: list[str] | None = None) -> dict:
    sys.path.insert(0, str(ROOT))
    from magnet_assets.translation import MIN_SINGLE_TURN_BASE
    from magnet_lib.distillation.mixing import build_sft_set
    from magnet_lib.distillation.single_turn import item_counts, make_single_turn
    from magnet_lib.distillation.teacher import distill
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.pool.envs import builtin_environments
    from magnet_lib.settings import load_settings
    from magnet_lib.translation.episodes import translate
    from tests.translation_fixtures import augmented_for

    base = load_settings(target_items=target)
    categories = {c: env.tools() for c, env in builtin_environments().items() if not only or c in only}
    functions = sum(len(t) for t in categories.values())
    per_node = base.walks_for(functions)
    settings = base.model_copy(update={"graph": base.graph.model_copy(update={"walks_per_node": per_node})})
    start = time.perf_counter()
    items, episodes, accepted, walks = [], 0, 0, 0
    drawn: Counter = Counter()
    for tools in categories.values():
        runner = TaskRunner(settings.llm)
        fsps = augmented_for(tools, settings, runner, drawn)
        walks += len({f.parent_fsp_id or f.fsp_id for f in fsps})
        eps = translate(fsps, tools, settings, runner)
        episodes += len(eps)
        ok = sum(e.status == "ok" for e in eps)
        accepted += ok
        items += [r.trajectory for r in distill(eps, tools, runner) if r.trajectory is not None]
        made, _ = make_single_turn(tools, item_counts(max(ok, MIN_SINGLE_TURN_BASE), settings), settings, runner)
        items += made
        runner.close()
    rows, _ = build_sft_set(items, settings.distill, settings.seed)
    elapsed = time.perf_counter() - start
    return {
        "target_items": target,
        "categories": sorted(categories),
        "pool_functions": functions,
        "walks_per_node": per_node,
        "walks": walks,
        "walks_wanted": per_node * functions,
        "walks_drawn": drawn["drawn"],
        "walks_repeated": drawn["repeated"],
        "distinct_walk_share": round(drawn["distinct"] / drawn["drawn"], 4) if drawn["drawn"] else 0.0,
        "episodes": episodes,
        "accepted": accepted,
        "items_made": len(items),
        "sft_set_items": len(rows),
        "sft_set_by_kind": dict(sorted(Counter(f"{r.split}/{r.kind}" for r in rows).items())),
        "seconds": round(elapsed, 1),
        "items_per_second": round(len(rows) / elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets", nargs="+", default=["default", "4x"], help="'default', '<k>x' (k times the default's items) or a number"
    )
    parser.add_argument("--categories", nargs="*", help="built-in categories to use (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--earlier", help="keep the file's earlier runs, and its last one under this name")
    ns = parser.parse_args()
    result = {
        "command": "python -m benchmarks.scale " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "sizes": {},
    }
    if ns.earlier and ns.out.is_file():  # the file's last run moves to earlier_runs under that name
        old = json.loads(ns.out.read_text())
        result["earlier_runs"] = {**old.get("earlier_runs", {}), ns.earlier: {k: v for k, v in old.items() if k != "earlier_runs"}}
    for t in ns.targets:
        if t == "default":
            target = None
        elif t.endswith("x"):
            target = round(float(t[:-1]) * result["sizes"]["default"]["sft_set_items"])
        else:
            target = int(t)
        load = os.getloadavg()
        result["sizes"][t] = {**run_size(target, ns.categories), "load_avg_before": load, "load_avg_after": os.getloadavg()}
        print(t, result["sizes"][t], flush=True)
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {ns.out}")


if __name__ == "__main__":
    main()
