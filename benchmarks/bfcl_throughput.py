"""Throughput of ``magnet eval --bfcl`` against a served model: BFCL entries per second at
concurrency 8 and 32 through the local test server answering after ``latency`` seconds (it
answers with BFCL's ground truth, so every entry is also checked: accuracy must be 1.0), and a
rerun over the same response cache.

    HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python -m benchmarks.bfcl_throughput \
        [--latency 0.5] [--multi-turn 32] [--single-turn 64] [--out benchmarks/results/bfcl_throughput.json]

Entries run in lock step (every live entry asks for its next step at once), so the ideal wall
time is, per round of requests, ceil(requests in the round / C) x latency, summed over the
rounds; the ratio reported is ideal / achieved (1.0 = the harness adds nothing to the model's
latency). Rounds are counted by wrapping the backend. Each concurrency is run with the response
cache (a fresh one: every answer is written) and without it, to separate the cache's writes. The server runs in this process (it
answers from the prompt registry); client, server and BFCL's executor share one interpreter.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from machine_info import machine, write_report  # benchmarks/ is this script's folder on sys.path

from magnet_lib.evaluation import bfcl
from magnet_lib.llm.runner import TaskRunner
from magnet_lib.settings import LLMSettings
from magnet_lib.testing.server import TestServer

MODEL = "hosted_vllm/magnet-test"


class Counting:
    """A backend that records how many requests each lock-step round holds."""

    def __init__(self, inner):
        self.inner, self.rounds = inner, []
        self.name, self.style, self.results_as = inner.name, inner.style, inner.results_as

    def respond(self, requests):
        self.rounds.append(len(requests))
        return self.inner.respond(requests)


def one_run(server: TestServer, cache: Path | None, concurrency: int, latency: float, limits: dict[str, int], style: str) -> dict:
    settings = LLMSettings(model=MODEL, api_base=server.url, api_key="sk-bench", concurrency=concurrency, timeout_s=30.0)
    runner = TaskRunner(settings, cache_dir=cache)
    backend = Counting(bfcl.ServedBackend(runner, style))
    before = server.requests
    start = time.perf_counter()
    reports = [bfcl.evaluate(backend, [category], limit) for category, limit in limits.items()]
    wall = time.perf_counter() - start
    stats = runner.metadata()["bfcl_step"]
    runner.close()
    entries = sum(len(r.entries) for r in reports)
    ideal = sum(math.ceil(n / concurrency) for n in backend.rounds) * latency
    requests = server.requests - before
    return {
        "concurrency": concurrency,
        "cache": cache is not None,
        "entries": entries,
        "requests": requests,
        "rounds": len(backend.rounds),
        "cache_hits": stats["cache_hits"],
        "wall_s": round(wall, 3),
        "entries_per_s": round(entries / wall, 3),
        "requests_per_s": round(requests / wall, 3) if requests else 0.0,
        "ideal_wall_s": round(ideal, 3),
        "ratio_to_ideal": round(ideal / wall, 3) if requests else None,
        "accuracy": {c: r.accuracy(c) for r in reports for c in r.categories},
        "max_in_flight": server.max_in_flight,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--multi-turn", type=int, default=32, help="multi_turn_base entries")
    parser.add_argument("--single-turn", type=int, default=64, help="simple_python entries")
    parser.add_argument("--style", default="prompting", choices=bfcl.STYLES)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bfcl_throughput.json"))
    args = parser.parse_args()
    limits = {"multi_turn_base": args.multi_turn, "simple_python": args.single_turn}
    load_before = os.getloadavg()
    results = []
    with TestServer(latency_s=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        for c in (8, 32):
            for cache in (Path(tmp) / f"cache{c}", None):
                server.reset_counts()
                results.append(one_run(server, cache, c, args.latency, limits, args.style))
                print(json.dumps(results[-1]), flush=True)
        server.reset_counts()
        rerun = one_run(server, Path(tmp) / "cache32", 32, args.latency, limits, args.style)
        print(json.dumps(rerun), flush=True)
    out = {
        "command": "HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python -m benchmarks.bfcl_throughput " + " ".join(sys.argv[1:]),
        "what": "BFCL entries/s of a served model (the local test server answering BFCL's ground truth after latency_s) "
        "through ServedBackend -> TaskRunner -> LiteLLM -> HTTP; ratio = lock-step ideal / achieved",
        "latency_s": args.latency,
        "style": args.style,
        "categories": limits,
        "throughput": results,
        "cached_rerun": rerun,
        "machine": machine(load_before, bfcl_eval=bfcl.version()),
    }
    write_report(args.out, out)


if __name__ == "__main__":
    main()
