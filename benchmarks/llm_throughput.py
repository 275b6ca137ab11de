"""Throughput, fault tolerance and cache reruns of the LLM layer against the local test server.

Command (about a minute; writes benchmarks/results/llm_throughput.json)::

    HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/llm_throughput.py

and at a latency closer to a real model's (writes llm_throughput_latency1s.json)::

    HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/llm_throughput.py \
        --latency 1.0 --rounds 8 --repeats 2 --out benchmarks/results/llm_throughput_latency1s.json

What it measures, with the ``classify_tool`` task over distinct tools, through the model client
(``hosted_vllm/`` with an ``api_base``: the lean OpenAI-compatible path) and real HTTP to :class:`magnet_lib.testing.server.TestServer` answering after ``latency`` seconds:

1. throughput at concurrency C in {1, 8, 32, 128}: achieved requests/s over the ideal C / L
   (the target is at least 0.9 at C = 32);
2. the C = 32 load again with 10% of requests faulted (429 with Retry-After, 500, hang past the
   client timeout, a body that is not JSON, an answer that does not parse): every item must end
   as a result or a recorded reject, none lost; retries and re-asks per item;
3. a rerun of that load over the same cache: the requests it makes (should be zero) and its
   wall time.

The server runs in the benchmark's own process (it must: it answers from the prompt registry),
so client and server share one interpreter lock; on a small machine the client's CPU time per
request is what limits high concurrency. ``benchmarks/llm_vs_curator.py`` measures with the
server in a process of its own, side by side with Curator.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine_info import machine, write_report  # benchmarks/ is this script's folder on sys.path

from magnet_lib.llm import TaskRunner
from magnet_lib.pool.classify import CLASSIFY_TOOL, ClassifyInput
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.settings import LLMSettings
from magnet_lib.testing.server import TestServer

RESULTS = Path(__file__).resolve().parent / "results" / "llm_throughput.json"
MODEL = "hosted_vllm/magnet-test"  # the vLLM route; the test server speaks its protocol


def make_items(n: int, tag: str) -> list[ClassifyInput]:
    """``n`` distinct classification prompts made from the built-in tools."""
    envs = builtin_environments()
    tools = [t for env in envs.values() for t in env.tools()]
    categories = sorted(envs)
    classes = {c: sorted({t.tool_class for t in env.tools()}) for c, env in envs.items()}
    items = []
    for i in range(n):
        t = tools[i % len(tools)]
        items.append(
            ClassifyInput(
                name=f"{t.name}_{tag}_{i}",
                description=t.description,
                parameters=t.parameters,
                category=t.category,
                categories=categories,
                classes=classes[t.category],
            )
        )
    return items


def runner_for(server: TestServer, cache_dir: Path, concurrency: int, **extra) -> TaskRunner:
    settings = LLMSettings(
        model=MODEL, api_base=server.url, api_key="sk-benchmark", concurrency=concurrency,
        timeout_s=extra.pop("timeout_s", 30.0), max_retries=6, retry_budget_s=120.0, max_reasks=2, **extra,
    )  # fmt: skip
    return TaskRunner(settings, cache_dir=cache_dir, backoff_base_s=0.1, backoff_max_s=2.0)


def timed_run(runner: TaskRunner, items: list[ClassifyInput]):
    """Results, wall seconds and CPU seconds of the whole process (client and server)."""
    started, cpu = time.perf_counter(), time.process_time()
    results = runner.run(CLASSIFY_TOOL, items)
    return results, time.perf_counter() - started, time.process_time() - cpu


def steady_rate(arrivals: list[float]) -> float:
    """Requests/s arriving at the server in the middle 80% of the run (ramp-up and the
    draining tail, where fewer than C requests can be in flight, left out)."""
    arrivals = sorted(arrivals)
    start, end = arrivals[0], arrivals[-1]
    lo, hi = start + 0.1 * (end - start), start + 0.9 * (end - start)
    inside = sum(1 for t in arrivals if lo <= t < hi)
    return inside / (hi - lo) if hi > lo else float("nan")


def throughput(latency: float, concurrency: int, rounds: int, repeats: int, work: Path) -> dict:
    """``repeats`` runs of ``concurrency x rounds`` fresh items; the median run is reported."""
    n = max(concurrency * rounds, 25)
    runs = []
    with TestServer(latency_s=latency) as server:
        runner = runner_for(server, work / f"cache_c{concurrency}", concurrency)
        runner.run(CLASSIFY_TOOL, make_items(min(concurrency, 8), f"warm{concurrency}"))  # connections, imports
        for repeat in range(repeats):
            server.reset_counts()
            results, wall, cpu = timed_run(runner, make_items(n, f"c{concurrency}r{repeat}"))
            runs.append(
                {
                    "requests": server.requests,
                    "ok": sum(r.ok for r in results),
                    "wall_s": round(wall, 3),
                    "requests_per_s": round(server.requests / wall, 1),
                    "steady_requests_per_s": round(steady_rate([r.at for r in server.records]), 1),
                    "server_max_in_flight": server.max_in_flight,
                    "process_cpu_ms_per_request": round(1000 * cpu / max(1, server.requests), 2),
                }
            )
    ideal = concurrency / latency
    median = sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2]
    return {
        "concurrency": concurrency,
        "items_per_run": n,
        "ideal_per_s": round(ideal, 1),
        "ratio_to_ideal": round(median["requests_per_s"] / ideal, 3),
        "steady_ratio_to_ideal": round(median["steady_requests_per_s"] / ideal, 3),
        "median_run": median,
        "ratios_all_runs": [round(r["requests_per_s"] / ideal, 3) for r in runs],
        "steady_ratios_all_runs": [round(r["steady_requests_per_s"] / ideal, 3) for r in runs],
    }


def faults_and_rerun(latency: float, concurrency: int, n: int, fault_rate: float, work: Path) -> tuple[dict, dict]:
    items = make_items(n, "faults")
    offline = [CLASSIFY_TOOL.offline(item) for item in items]
    cache = work / "cache_faults"
    # the client gives up on a hung request well after a normal answer would have come
    timeout = max(1.0, 3 * latency)
    with TestServer(latency_s=latency, fault_rate=fault_rate, retry_after_s=1.0, hang_s=10 * timeout, seed=1) as server:
        runner = runner_for(server, cache, concurrency, timeout_s=timeout)
        results, wall, _ = timed_run(runner, items)
        stats = runner.stats[CLASSIFY_TOOL.name]
        retries = [r.retries for r in results]
        reasks = [r.reasks for r in results]
        faults = {
            "concurrency": concurrency,
            "items": n,
            "fault_rate": fault_rate,
            "client_timeout_s": timeout,
            "retry_after_s": 1.0,
            "requests": server.requests,
            "faults_injected": dict(sorted(server.faults.items())),
            "ok": sum(r.ok for r in results),
            "rejects": sum(not r.ok for r in results),
            "reject_reasons": stats.reject_reasons,
            "lost": n - len(results) + sum(1 for r in results if not r.ok and not r.reject_reason),
            # the server answers with the offline implementation, so every result must equal it, in order
            "results_equal_offline": sum(r.value == expected for r, expected in zip(results, offline) if r.ok),
            "retries_per_item_mean": round(statistics.mean(retries), 3),
            "retries_per_item_max": max(retries),
            "reasks_per_item_mean": round(statistics.mean(reasks), 3),
            "transport_errors": stats.transport_errors,
            "wall_s": round(wall, 3),
        }
        server.reset_counts()
        rerun_runner = runner_for(server, cache, concurrency, timeout_s=timeout)
        again, rerun_wall, _ = timed_run(rerun_runner, items)
        rerun = {
            "items": n,
            "requests": server.requests,
            "cache_hits": rerun_runner.stats[CLASSIFY_TOOL.name].cache_hits,
            "same_results": [r.value for r in again] == [r.value for r in results],
            "all_cached": all(r.cached for r in again),
            "wall_s": round(rerun_wall, 3),
            "items_per_s": round(n / rerun_wall, 1),
        }
    return faults, rerun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--rounds", type=int, default=20, help="Items per run = concurrency x rounds.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per concurrency; the median is reported.")
    parser.add_argument("--fault-items", type=int, default=640)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="magnet-llm-bench-") as tmp:
        work = Path(tmp)
        rows = []
        for c in args.concurrency:
            rows.append(throughput(args.latency, c, args.rounds, args.repeats, work))
            print(json.dumps(rows[-1]), flush=True)
        faults, rerun = faults_and_rerun(args.latency, 32, args.fault_items, args.fault_rate, work)
        print(json.dumps(faults), flush=True)
        print(json.dumps(rerun), flush=True)
    report = {
        "command": "HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/llm_throughput.py",
        "task": CLASSIFY_TOOL.name,
        "model": MODEL,
        "latency_s": args.latency,
        "throughput": rows,
        "faults": faults,
        "rerun": rerun,
        "total_wall_s": round(time.perf_counter() - started, 1),
        "machine": machine(load_before),
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
