"""Translation throughput: episodes per second offline, and LLM requests per episode per task.

    python -m benchmarks.translation_throughput [--tools 5000] [--llm-categories 3] [--out benchmarks/results/translation_throughput.json]

1. **Built-in pool, offline**: every built-in category's augmented FSPs (made with the graph
   stage's library, not timed) are translated (back- and forth-translation, execution,
   verification) and distilled into positive trajectories; episodes per second for each.
2. **Generated pool, offline**: the same on the spec-only pool of ``benchmarks.synthetic_pool``
   (``--tools`` tools in 49 categories; outputs from the simulated executor).
3. **LLM mode**: a few built-in categories through LiteLLM and real HTTP against the local test
   server (:mod:`magnet_lib.testing.server`, answers = the offline implementations), counting
   the requests per task per episode (single-turn items separately).

Writes the JSON results (machine, settings, numbers, reject reasons).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from magnet_lib.distillation.quality import reason_class
from magnet_lib.distillation.single_turn import (
    item_counts,
    make_single_turn,
)
from magnet_lib.distillation.teacher import distill
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import Tool
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.settings import LLMSettings, load_settings
from magnet_lib.translation.episodes import translate
from tests.translation_fixtures import augmented_for


def _pool_run(categories: dict[str, list[Tool]], settings) -> dict:
    """Translate and distill every category offline; time each part."""
    fsps_by_cat = {}
    start = time.perf_counter()
    for cat, tools in categories.items():
        fsps_by_cat[cat] = augmented_for(tools, settings)
    graph_seconds = time.perf_counter() - start
    translate_s = distill_s = 0.0
    episodes_total = accepted = trajectories = turns = calls = 0
    reasons: Counter[str] = Counter()
    for cat, tools in categories.items():
        runner = TaskRunner(settings.llm)
        t0 = time.perf_counter()
        episodes = translate(fsps_by_cat[cat], tools, settings, runner)
        t1 = time.perf_counter()
        results = distill(episodes, tools, runner)
        t2 = time.perf_counter()
        translate_s += t1 - t0
        distill_s += t2 - t1
        episodes_total += len(episodes)
        ok = [e for e in episodes if e.status == "ok"]
        accepted += len(ok)
        turns += sum(len(e.turns) for e in ok)
        calls += sum(len(t.calls) for e in ok for t in e.turns)
        trajectories += sum(1 for r in results if r.trajectory is not None)
        reasons.update(reason_class(e.reject_reason or "") for e in episodes if e.status == "rejected")
    return {
        "categories": len(categories),
        "tools": sum(len(t) for t in categories.values()),
        "augmented_fsps_seconds_not_timed_below": round(graph_seconds, 2),
        "episodes": episodes_total,
        "accepted": accepted,
        "accept_rate": round(accepted / episodes_total, 4) if episodes_total else 0.0,
        "turns_per_accepted_episode": round(turns / accepted, 3) if accepted else 0.0,
        "calls_per_accepted_episode": round(calls / accepted, 3) if accepted else 0.0,
        "translate_seconds": round(translate_s, 2),
        "episodes_per_second": round(episodes_total / translate_s, 1) if translate_s else 0.0,
        "distill_seconds": round(distill_s, 2),
        "trajectories": trajectories,
        "trajectories_per_second": round(trajectories / distill_s, 1) if distill_s else 0.0,
        "episodes_per_second_translate_and_distill": round(episodes_total / (translate_s + distill_s), 1),
        "top_reject_reasons": dict(reasons.most_common(12)),
    }


def builtin_pool() -> dict[str, list[Tool]]:
    return {cat: env.tools() for cat, env in sorted(builtin_environments().items())}


def generated_pool(total: int, seed: int = 0) -> tuple[dict[str, list[Tool]], float]:
    from benchmarks.synthetic_pool import write_pool
    from magnet_lib.pool.function_pool import load_spec_file

    folder = Path(tempfile.mkdtemp(prefix="magnet-pool-"))
    write_pool(folder, total=total, seed=seed)
    start = time.perf_counter()
    categories: dict[str, list[Tool]] = {}
    for category in sorted(p for p in folder.iterdir() if p.is_dir()):
        for spec in sorted(category.iterdir()):  # each file validated once (load_pool re-reads the pool per category)
            categories.setdefault(category.name, []).extend(load_spec_file(spec, category.name).tools)
    return categories, time.perf_counter() - start


def llm_requests(categories: dict[str, list[Tool]], settings) -> dict:
    """Requests per task per episode through the test server (fresh cache, no reuse)."""
    from magnet_lib.testing.server import TestServer

    out: dict = {"categories": sorted(categories)}
    with TestServer() as server, tempfile.TemporaryDirectory() as cache:
        llm = LLMSettings(model="openai/test", api_base=server.url, api_key="sk-test", concurrency=32, timeout_s=10.0)
        episodes_total = accepted = 0
        start = time.perf_counter()
        for cat, tools in categories.items():
            fsps = augmented_for(tools, settings)
            with TaskRunner(llm, cache_dir=Path(cache)) as runner:
                episodes = translate(fsps, tools, settings, runner)
                distill(episodes, tools, runner)
            episodes_total += len(episodes)
            accepted += sum(e.status == "ok" for e in episodes)
        multi_seconds = time.perf_counter() - start
        multi = dict(server.by_task)
        server.reset_counts()
        items = 0
        for cat, tools in categories.items():
            with TaskRunner(llm, cache_dir=Path(cache)) as runner:
                made, _ = make_single_turn(tools, item_counts(8, settings), settings, runner)
            items += len(made)
        single = dict(server.by_task)
    out["multi_turn"] = {
        "episodes": episodes_total,
        "accepted": accepted,
        "requests": multi,
        "requests_per_episode": {k: round(v / episodes_total, 2) for k, v in multi.items()},
        "requests_per_accepted_episode": {k: round(v / accepted, 2) for k, v in multi.items()} if accepted else {},
        "seconds": round(multi_seconds, 2),
        "note": "translation requests are also spent on episodes rejected later; the plan is probed on a copy of the "
                "environment first, so no request is spent on a turn whose calls cannot execute offline",
    }  # fmt: skip
    out["single_turn"] = {
        "items": items,
        "requests": single,
        "requests_per_item": {k: round(v / items, 2) for k, v in single.items()} if items else {},
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tools", type=int, default=5000)
    parser.add_argument("--llm-categories", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/translation_throughput.json")
    ns = parser.parse_args()
    settings = load_settings()
    result: dict = {
        "command": "python -m benchmarks.translation_throughput" + (f" --tools {ns.tools}" if ns.tools != 5000 else ""),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "settings": {"turn_retries": settings.distill.turn_retries, **settings.graph.model_dump()},
    }
    builtin = builtin_pool()
    print(f"built-in pool: {sum(len(t) for t in builtin.values())} tools in {len(builtin)} categories")
    result["builtin_offline"] = _pool_run(builtin, settings)
    print(json.dumps(result["builtin_offline"], indent=1))
    generated, load_seconds = generated_pool(ns.tools)
    print(f"generated pool: {sum(len(t) for t in generated.values())} tools in {len(generated)} categories ({load_seconds:.1f}s to load)")
    result["generated_offline"] = {"load_seconds": round(load_seconds, 2), **_pool_run(generated, settings)}
    print(json.dumps(result["generated_offline"], indent=1))
    chosen = dict(list(builtin.items())[: ns.llm_categories])
    result["llm_mode_test_server"] = llm_requests(chosen, settings)
    print(json.dumps(result["llm_mode_test_server"], indent=1))
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
