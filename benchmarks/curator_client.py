"""One Curator run against the fake server, in Curator's own virtual environment (see
``benchmarks/llm_vs_curator.py``, which starts it). Reads the rendered prompts, sends them
through ``curator.LLM`` with the chosen backend, prints one JSON line of measurements.

    <venv>/bin/python benchmarks/curator_client.py --prompts P.json --base URL --backend openai --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--warm", required=True, help="Prompts of the warm-up run (connections, imports).")
    parser.add_argument("--base", required=True)
    parser.add_argument("--backend", choices=["openai", "litellm"], required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--rerun", action="store_true", help="Run the prompts again over the same cache.")
    args = parser.parse_args()
    os.environ["CURATOR_CACHE_DIR"] = args.cache_dir
    os.environ.setdefault("CURATOR_DISABLE_RICH_DISPLAY", "1")
    os.environ.setdefault("TELEMETRY_ENABLED", "False")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # tiktoken's encodings come bundled with LiteLLM (installed with Curator); nothing is downloaded
    import importlib.util

    litellm_dir = list(importlib.util.find_spec("litellm").submodule_search_locations)[0]
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.join(litellm_dir, "litellm_core_utils", "tokenizers"))

    from bespokelabs import curator
    from datasets import Dataset

    class Classify(curator.LLM):
        def prompt(self, row):
            return json.loads(row["messages"])

        def parse(self, row, response):
            data = json.loads(response)
            return {"category": data["category"], "tool_class": data["tool_class"]}

    model = "gpt-4o-mini" if args.backend == "openai" else "openai/gpt-4o-mini"
    backend_params = {
        "base_url": args.base,
        "api_key": "sk-benchmark",
        "max_concurrent_requests": args.concurrency,
        "max_requests_per_minute": 10_000_000,
        "max_tokens_per_minute": 10_000_000_000,
        "request_timeout": args.timeout,
        "max_retries": 3,
        "require_all_responses": False,
    }

    def run(path: str):
        with open(path) as f:
            prompts = json.load(f)
        data = Dataset.from_dict({"messages": [json.dumps(p["messages"]) for p in prompts]})
        llm = Classify(
            model_name=model,
            backend=args.backend,
            generation_params={"temperature": 0.0, "max_tokens": 2048},
            backend_params=backend_params,
        )
        started, cpu = time.perf_counter(), time.process_time()
        out = llm(data)
        return out, time.perf_counter() - started, time.process_time() - cpu, len(prompts)

    run(args.warm)
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(args.base + "/reset", data=b"{}", method="POST")).read()
    out, wall, cpu, n = run(args.prompts)
    dataset = getattr(out, "dataset", out)
    server = json.loads(urllib.request.urlopen(args.base + "/stats").read())
    rerun = {}
    if args.rerun:  # the same prompts again over the same cache
        urllib.request.urlopen(urllib.request.Request(args.base + "/reset", data=b"{}", method="POST")).read()
        again, rerun_wall, _, _ = run(args.prompts)
        rerun = {"wall_s": rerun_wall, "requests": json.loads(urllib.request.urlopen(args.base + "/stats").read())["requests"]}
        rerun["ok"] = len(getattr(again, "dataset", again))
    print(
        "RESULT "
        + json.dumps(
            {
                "items": n,
                "ok": len(dataset),
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "server": server,
                "rerun": rerun,
                "version": __import__("importlib.metadata").metadata.version("bespokelabs-curator"),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
