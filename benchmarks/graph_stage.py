"""Benchmark of the graph stage on a generated pool the size of the paper's (5,000 spec-only
tools in 49 categories): offline judging, loading Kuzu, walking from every node and the node
operations (time and peak memory), and for the LLM judge the number of calls and prompt
tokens with and without the schema pre-filter, plus what the pre-filter loses.

    HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python -m benchmarks.graph_stage \
        [--tools 5000] [--seed 0] [--out benchmarks/results/graph_stage.json]

Timings come from a plain run of each phase; peak memory from a second run of the same phase
under ``tracemalloc`` (Python heap; Kuzu's native memory is not in it, the process's maximum
RSS is reported beside it). Prompt tokens are counted with ``litellm.token_counter`` (the
bundled cl100k tokenizer of gpt-4o-mini; no network).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graph_db
from benchmarks.synthetic_pool import write_pool
from magnet_lib.graph.dependency import (
    CheckNestedTask,
    JudgeDependenciesTask,
    NestedItem,
    NestedSource,
    judge_category,
    judge_items,
    offline_edges,
    sample_candidates,
)
from magnet_lib.graph.node_operations import (
    augment_fsps,
    nested_neighbours,
    operation_counts,
)
from magnet_lib.graph.walk import initial_fsps
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.models import Tool
from magnet_lib.pool.function_pool import discover_categories, load_spec_file
from magnet_lib.settings import GraphSettings, LLMSettings, load_settings

TOKEN_MODEL = "gpt-4o-mini"


def measure(fn: Callable[[], Any], trace_memory: bool = True) -> tuple[Any, dict[str, float]]:
    """Run ``fn`` once timed, then again under tracemalloc for its peak (Python heap)."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    numbers = {"seconds": round(seconds, 3)}
    if trace_memory:
        del result
        gc.collect()
        tracemalloc.start()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        numbers["peak_python_mib"] = round(peak / 2**20, 1)
    return result, numbers


def load_tools(tools_dir: Path) -> tuple[list[Tool], int]:
    settings = load_settings(tools_dir=tools_dir, builtin_tools=False)
    tools, rejects = [], 0
    for category, source in sorted(discover_categories(settings).items()):
        for path in source.spec_files:
            part = load_spec_file(path, category)
            tools += part.tools
            rejects += len(part.rejects)
    return tools, rejects


def by_category(tools: list[Tool]) -> dict[str, list[Tool]]:
    out: dict[str, list[Tool]] = {}
    for t in tools:
        out.setdefault(t.category, []).append(t)
    return out


def judge_all(groups: dict[str, list[Tool]], g: GraphSettings, seed: int, prefilter: bool = True):
    edges, stats = [], []
    for category, tools in sorted(groups.items()):
        e, s = judge_category(
            tools, TaskRunner(LLMSettings(model=None)), candidates=g.candidates, batch=g.judge_batch, prefilter=prefilter, seed=seed
        )
        edges += e
        stats.append(s)
    return edges, stats


def walk_all(path: Path, categories: list[str], g: GraphSettings, seed: int):
    fsps, adjacencies = [], {}
    for category in categories:
        adjacency = graph_db.adjacency(path, category)
        adjacencies[category] = adjacency
        fsps += initial_fsps(
            category, adjacency, walk_length=g.walk_length, walks_per_node=g.walks_per_node, min_turns=g.min_turns, seed=seed
        )
    return fsps, adjacencies


def operate_all(path: Path, fsps, adjacencies, g: GraphSettings, seed: int):
    out = []
    by_cat: dict[str, list] = {}
    for f in fsps:
        by_cat.setdefault(f.category, []).append(f)
    for category, items in by_cat.items():
        required = {f["name"]: f["parameters"].get("required", []) for f in graph_db.functions(path, category)}
        out += augment_fsps(items, nested_neighbours(adjacencies[category]), g, required, seed)
    return out


def llm_accounting(groups: dict[str, list[Tool]], g: GraphSettings, seed: int, prefilter: bool, edges) -> dict[str, Any]:
    """Judge calls and prompt tokens an LLM run would spend (rendered prompts, counted)."""
    import litellm

    judge = JudgeDependenciesTask()
    nested_task = CheckNestedTask()
    calls = tokens = pairs = 0
    per_function = Counter()
    start = time.perf_counter()
    for category, tools in sorted(groups.items()):
        items = judge_items(tools, sample_candidates(tools, g.candidates, seed), g.judge_batch, prefilter, judge.profiles)
        for item in items:
            calls += 1
            per_function[item.target.name] += 1
            pairs += len(item.candidates)
            tokens += litellm.token_counter(model=TOKEN_MODEL, messages=judge.render(item))
    # check_nested: one call per target with input edges (from the offline judge's edges)
    by_name = {t.name: t for tools in groups.values() for t in tools}
    sources: dict[str, list] = {}
    for e in edges:
        if e.kind != "premise":
            sources.setdefault(e.dst, []).append(NestedSource(tool=by_name[e.src], kind=e.kind, evidence=e.evidence))
    nested_tokens = sum(
        litellm.token_counter(model=TOKEN_MODEL, messages=nested_task.render(NestedItem(target=by_name[d], sources=s)))
        for d, s in sources.items()
    )
    functions = sum(len(t) for t in groups.values())
    return {
        "judge_calls": calls,
        "judge_prompt_tokens": tokens,
        "judged_pairs": pairs,
        "judge_calls_per_function_max": max(per_function.values()) if per_function else 0,
        "judge_calls_per_function_mean": round(calls / functions, 3),
        "check_nested_calls": len(sources),
        "check_nested_prompt_tokens": nested_tokens,
        "counting_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the graph stage on a generated pool.")
    parser.add_argument("--tools", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/graph_stage.json")
    parser.add_argument("--no-memory", action="store_true", help="Skip the tracemalloc re-runs.")
    args = parser.parse_args()
    g = GraphSettings()
    trace = not args.no_memory
    results: dict[str, Any] = {
        "command": "python -m benchmarks.graph_stage " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": __import__("os").cpu_count()},
        "settings": g.model_dump(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        start = time.perf_counter()
        counts = write_pool(tmp_path / "tools", args.tools, args.seed)
        results["pool"] = {
            "tools": sum(counts.values()),
            "categories": len(counts),
            "generate_seconds": round(time.perf_counter() - start, 2),
        }
        (tools, rejects), load = measure(lambda: load_tools(tmp_path / "tools"), trace_memory=False)
        results["pool"].update({"loaded": len(tools), "rejects": rejects, "load_and_validate_seconds": load["seconds"]})
        groups = by_category(tools)
        print(f"pool: {len(tools)} tools, {len(groups)} categories, loaded in {load['seconds']}s", flush=True)

        (edges, stats), judging = measure(lambda: judge_all(groups, g, args.seed), trace)
        kinds = Counter(e.kind for e in edges)
        results["offline_judging"] = {
            **judging,
            "candidate_pairs": sum(s.candidate_pairs for s in stats),
            "prefiltered_pairs": sum(s.prefiltered_pairs for s in stats),
            "judge_items": sum(s.judge_items for s in stats),
            "check_nested_items": sum(s.nested_items for s in stats),
            "edges": len(edges),
            "edges_by_kind": dict(kinds),
            "nested_edges": sum(e.nested for e in edges),
            "out_degree_mean": round(len(edges) / len(tools), 2),
            "functions_without_out_edges": len(tools) - len({e.src for e in edges}),
        }
        print(f"judging: {judging} -> {len(edges)} edges", flush=True)

        path = tmp_path / "graph.kuzu"
        report, kuzu_load = measure(lambda: graph_db.build_graph(path, tools, edges), trace)
        results["kuzu_load"] = {
            **kuzu_load,
            "nodes": report.nodes,
            "edges": report.edges,
            "database_mib": round(path.stat().st_size / 2**20, 1),
        }
        print(f"kuzu: {kuzu_load}", flush=True)

        categories = sorted(groups)
        (fsps, adjacencies), walking = measure(lambda: walk_all(path, categories, g, args.seed), trace)
        lengths = Counter(len(f.path) for f in fsps)
        results["walks"] = {
            **walking,
            "fsps": len(fsps),
            "start_nodes": len(tools),
            "length_histogram": {str(k): v for k, v in sorted(lengths.items())},
            "mean_length": round(statistics.mean(len(f.path) for f in fsps), 2) if fsps else 0,
        }
        print(f"walks: {walking} -> {len(fsps)} FSPs", flush=True)

        augmented, operating = measure(lambda: operate_all(path, fsps, adjacencies, g, args.seed), trace)
        no_split = [a for a in augmented if a.variant == "no_split"]
        results["node_operations"] = {
            **operating,
            "augmented_fsps": len(augmented),
            "variants": dict(Counter(a.variant for a in augmented)),
            "operation_counts": operation_counts(augmented),
            "mean_turns_no_split": round(statistics.mean(len(a.turns) for a in no_split), 2) if no_split else 0,
            "mean_calls_no_split": round(statistics.mean(sum(len(t.functions) for t in a.turns) for a in no_split), 2) if no_split else 0,
            "max_calls_in_a_turn": max((len(t.functions) for a in augmented for t in a.turns), default=0),
        }
        print(f"node operations: {operating}", flush=True)

        stage = sum(results[k]["seconds"] for k in ("offline_judging", "kuzu_load", "walks", "node_operations"))
        results["graph_stage_seconds"] = round(stage, 2)
        results["target_graph_stage_under_120s"] = stage < 120

        # ---------------------------------------------------------------- LLM judge accounting
        without = llm_accounting(groups, g, args.seed, prefilter=False, edges=edges)
        with_pf = llm_accounting(groups, g, args.seed, prefilter=True, edges=edges)
        lost_start = time.perf_counter()
        found_without, found_with = set(), set()
        for category, members in groups.items():
            candidates = sample_candidates(members, g.candidates, args.seed)
            found_without |= offline_edges(members, candidates, prefilter=False)
            found_with |= offline_edges(members, candidates, prefilter=True)
        lost = found_without - found_with
        results["llm_judge"] = {
            "tokenizer": f"litellm.token_counter(model='{TOKEN_MODEL}')",
            "without_prefilter": without,
            "with_prefilter": with_pf,
            "saved": {
                "judge_calls": without["judge_calls"] - with_pf["judge_calls"],
                "judge_prompt_tokens": without["judge_prompt_tokens"] - with_pf["judge_prompt_tokens"],
                "judge_prompt_tokens_share": round(1 - with_pf["judge_prompt_tokens"] / max(1, without["judge_prompt_tokens"]), 3),
                "judged_pairs": without["judged_pairs"] - with_pf["judged_pairs"],
            },
            "lost": {
                "offline_edges_without_prefilter": len(found_without),
                "offline_edges_with_prefilter": len(found_with),
                "edges_lost": len(lost),
                "examples": sorted(f"{a} -> {b}" for a, b in lost)[:10],
                "seconds": round(time.perf_counter() - lost_start, 1),
            },
            "target_at_most_one_judge_call_per_function": with_pf["judge_calls_per_function_max"] <= 1
            and without["judge_calls_per_function_max"] <= 1,
        }
        print(
            f"llm judge: without {without['judge_calls']} calls / {without['judge_prompt_tokens']} tokens, "
            f"with {with_pf['judge_calls']} / {with_pf['judge_prompt_tokens']}; lost {len(lost)}",
            flush=True,
        )
    results["process_max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"graph stage: {results['graph_stage_seconds']}s; results in {out}")


if __name__ == "__main__":
    main()
