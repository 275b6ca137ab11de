"""Magnet's LLM layer side by side with Bespoke Curator on the same fake endpoint.

Command (about 15 minutes on 2 cores; writes benchmarks/results/llm_vs_curator.json)::

    HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/llm_vs_curator.py

What runs, each in its own process:

- the server: ``benchmarks/fake_openai_server.py``, a plain asyncio OpenAI-compatible endpoint
  answering a valid ``classify_tool`` JSON after ``L`` seconds (one per latency);
- the clients, one process per run, each warming up with ``C`` prompts, then resetting the
  server's counters and sending 640 distinct ``classify_tool`` prompts (the same rendered
  messages for every client, model ``gpt-4o-mini`` at the fake ``api_base``), then the same
  640 again over its cache (the cached rerun):

  * ``magnet``: :class:`magnet_lib.llm.TaskRunner` as it is (the lean aiohttp path);
  * ``magnet_litellm``: the same runner with ``transport="litellm"`` (every request through
    ``litellm.acompletion``, the path before issue 16): the "before" column;
  * ``curator_openai`` / ``curator_litellm``: Curator 0.1.31's OpenAI-client and LiteLLM
    backends (``benchmarks/curator_client.py``), installed by this script into its own
    virtual environment ``benchmarks/.venv-curator`` (ignored by git). Curator is a
    measuring stick, not a dependency.

Runs are interleaved (every repeat runs every configuration and client, the client order
rotating) and medians of ``--repeats`` paired runs are reported, with ratios Magnet / peer
taken within each repeat. Per run: throughput (items / wall time of the call) and its share
of the ideal C / L, the client process's CPU per request and peak RSS, the server's mean
requests in flight while busy (the client's busy slots) and its own CPU per request.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

from machine_info import machine, write_report  # benchmarks/ is this script's folder on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "llm_vs_curator.json"
VENV = ROOT / "benchmarks" / ".venv-curator"
CURATOR = "bespokelabs-curator==0.1.31"
MODEL = "gpt-4o-mini"
CLIENTS = ("magnet", "magnet_litellm", "curator_openai", "curator_litellm")


# --------------------------------------------------------------------------- the Magnet client (a child process)


def magnet_client(args: argparse.Namespace) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from llm_throughput import make_items

    from magnet_lib.llm import TaskRunner
    from magnet_lib.pool.classify import CLASSIFY_TOOL
    from magnet_lib.settings import LLMSettings

    settings = LLMSettings(
        model=f"openai/{MODEL}", api_base=args.base, api_key="sk-benchmark", concurrency=args.concurrency,
        timeout_s=60.0, max_retries=3, transport=args.transport,
    )  # fmt: skip
    cache = Path(args.cache_dir)

    def run(items):
        runner = TaskRunner(settings, cache_dir=cache)
        started, cpu = time.perf_counter(), time.process_time()
        results = runner.run(CLASSIFY_TOOL, items)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        runner.close()
        return results, wall, cpu, runner.stats[CLASSIFY_TOOL.name]

    run(make_items(args.concurrency, "warm"))
    _post(args.base + "/reset")
    items = make_items(args.items, "main")
    results, wall, cpu, stats = run(items)
    server = _get(args.base + "/stats")
    rerun = {}
    if args.rerun:
        _post(args.base + "/reset")
        again, rerun_wall, _, rerun_stats = run(items)
        rerun = {
            "wall_s": rerun_wall,
            "requests": _get(args.base + "/stats")["requests"],
            "ok": sum(r.ok for r in again),
            "same_results": [r.value for r in again] == [r.value for r in results],
            "cache_hits": rerun_stats.cache_hits,
        }
    out = {
        "items": len(items),
        "ok": sum(r.ok for r in results),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "server": server,
        "rerun": rerun,
        "calls": stats.calls,
        "cost_usd": stats.cost_usd,
    }
    print("RESULT " + json.dumps(out), flush=True)


def _post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=30).read()


def _get(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


# --------------------------------------------------------------------------- the orchestrator


def ensure_curator() -> Path:
    """Curator in its own virtual environment (made on first use), never in ours."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import bespokelabs.curator"]
    if python.exists() and subprocess.run(check, capture_output=True, env=_clean_env()).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", CURATOR], check=True, env=_clean_env())
    return python


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["OPENAI_API_KEY"] = "sk-benchmark"  # Curator's LiteLLM backend reads the key from here (a dummy)
    return env


def write_prompts(work: Path, items: int, warm: int) -> tuple[Path, Path]:
    """The rendered messages Curator sends: exactly the prompts Magnet renders."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from llm_throughput import make_items

    from magnet_lib.llm import TaskRunner
    from magnet_lib.pool.classify import CLASSIFY_TOOL

    runner = TaskRunner()
    paths = []
    for name, n in (("main", items), ("warm", warm)):
        path = work / f"prompts_{name}_{n}.json"
        if not path.exists():
            path.write_text(json.dumps([{"messages": runner.prompt(CLASSIFY_TOOL, item)[0]} for item in make_items(n, name)]))
        paths.append(path)
    return paths[0], paths[1]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "fake_openai_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"the fake server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def run_client(client: str, base: str, concurrency: int, items: int, work: Path, curator_python: Path, rerun: bool) -> dict:
    cache = tempfile.mkdtemp(prefix=f"{client}-", dir=work)
    if client.startswith("magnet"):
        transport = "litellm" if client == "magnet_litellm" else "auto"
        cmd = [sys.executable, __file__, "--client", "--base", base, "--concurrency", str(concurrency), "--items", str(items),
               "--cache-dir", cache, "--transport", transport]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=str(ROOT))
    else:
        main, warm = write_prompts(work, items, concurrency)
        cmd = [str(curator_python), str(ROOT / "benchmarks" / "curator_client.py"), "--prompts", str(main), "--warm", str(warm),
               "--base", base, "--backend", client.removeprefix("curator_"), "--concurrency", str(concurrency),
               "--cache-dir", cache]  # fmt: skip
        env = _clean_env()
    if rerun:
        cmd.append("--rerun")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{client} failed (rc {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def summarize(row: dict, latency: float, concurrency: int) -> dict:
    ideal = concurrency / latency
    rate = row["items"] / row["wall_s"]
    requests = max(1, row["server"]["requests"])
    return {
        "ok": row["ok"],
        "items": row["items"],
        "requests": row["server"]["requests"],
        "wall_s": round(row["wall_s"], 3),
        "items_per_s": round(rate, 1),
        "share_of_ideal": round(rate / ideal, 3),
        "client_cpu_ms_per_request": round(1000 * row["cpu_s"] / requests, 3),
        "peak_rss_mib": round(row["peak_rss_mib"], 1),
        "busy_slots": row["server"]["mean_in_flight_while_busy"],
        "server_max_in_flight": row["server"]["max_in_flight"],
        "server_cpu_ms_per_request": row["server"]["server_cpu_ms_per_request"],
        **({"rerun": row["rerun"]} if row.get("rerun") else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--transport", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--rerun", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.2, 1.0])
    parser.add_argument("--items", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=CLIENTS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.client:
        args.concurrency = args.concurrency[0]
        return magnet_client(args)

    curator_python = ensure_curator() if any(c.startswith("curator") for c in args.clients) else Path()
    load_before = os.getloadavg()
    started = time.perf_counter()
    configs = [(lat, c) for lat in args.latency for c in args.concurrency]
    runs: dict[str, dict[str, list[dict]]] = {f"L={lat:g},C={c}": {client: [] for client in args.clients} for lat, c in configs}
    loads = []
    with tempfile.TemporaryDirectory(prefix="magnet-vs-curator-") as tmp:
        work = Path(tmp)
        servers = {lat: start_server(lat) for lat in args.latency}
        try:
            for repeat in range(args.repeats):
                for lat, c in configs:
                    order = args.clients[repeat % len(args.clients) :] + args.clients[: repeat % len(args.clients)]
                    for client in order:
                        loads.append(os.getloadavg()[0])
                        row = run_client(client, servers[lat][1], c, args.items, work, curator_python, rerun=(repeat == 0))
                        runs[f"L={lat:g},C={c}"][client].append(summarize(row, lat, c))
                        print(f"repeat {repeat} L={lat:g} C={c} {client}: {json.dumps(runs[f'L={lat:g},C={c}'][client][-1])}", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)

    table = []
    for (lat, c), key in zip(configs, runs):
        per = runs[key]

        def med(client: str, field: str, per: dict = per) -> float | None:
            values = [r[field] for r in per.get(client, [])]
            return round(statistics.median(values), 3) if values else None

        def paired(a: str, b: str, per: dict = per) -> float | None:
            if a not in per or b not in per:
                return None
            return round(statistics.median(x["items_per_s"] / y["items_per_s"] for x, y in zip(per[a], per[b])), 3)

        entry = {"latency_s": lat, "concurrency": c, "ideal_per_s": round(c / lat, 1)}
        for client in args.clients:
            entry[client] = {
                field: med(client, field)
                for field in (
                    "share_of_ideal",
                    "items_per_s",
                    "client_cpu_ms_per_request",
                    "peak_rss_mib",
                    "busy_slots",
                    "server_cpu_ms_per_request",
                )
            }
            entry[client]["ok_all_runs"] = all(r["ok"] == r["items"] for r in per[client])
        for mine in ("magnet", "magnet_litellm"):
            for peer in ("curator_openai", "curator_litellm"):
                entry[f"{mine}_vs_{peer}"] = paired(mine, peer)
        entry["magnet_vs_magnet_litellm"] = paired("magnet", "magnet_litellm")
        table.append(entry)
        print(json.dumps(entry), flush=True)

    reruns = {
        client: [r["rerun"] | {"config": key} for key, per in runs.items() for r in per.get(client, []) if r.get("rerun")]
        for client in args.clients
    }
    report = {
        "command": "HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/llm_vs_curator.py " + " ".join(sys.argv[1:]),
        "what": "items/s of 640 distinct classify_tool prompts against one fake OpenAI-compatible server in its own process "
        "(benchmarks/fake_openai_server.py), each client in its own process; share_of_ideal = items/s / (C/L); ratios are "
        "medians of per-repeat ratios (Magnet / peer); magnet_litellm is Magnet with transport='litellm' (the path before issue 16)",
        "settings": {
            "items": args.items,
            "repeats": args.repeats,
            "latencies_s": args.latency,
            "concurrency": args.concurrency,
            "clients": args.clients,
            "model": MODEL,
            "warm_up": "C prompts per client process before the measured run",
            "magnet": "TaskRunner with a fresh response cache, max_retries=3, timeout_s=60, adaptive concurrency on",
            "curator": f"{CURATOR} backends openai and litellm, max_concurrent_requests=C, rate limits 1e7 rpm / 1e10 tpm, "
            "fresh CURATOR_CACHE_DIR per run, require_all_responses=False",
        },
        "issue_16_before": {
            "source": "the table of issue 16 (Magnet before it, Curator 0.1.31, medians of 3 paired runs on a quiet 2-core machine)",
            "rows": [
                {
                    "latency_s": 0.2,
                    "concurrency": 32,
                    "magnet_share_of_ideal": 0.758,
                    "vs_curator_openai": 0.85,
                    "vs_curator_litellm": 0.95,
                },
                {
                    "latency_s": 0.2,
                    "concurrency": 128,
                    "magnet_share_of_ideal": 0.404,
                    "vs_curator_openai": 0.68,
                    "vs_curator_litellm": 1.40,
                },
                {
                    "latency_s": 1.0,
                    "concurrency": 32,
                    "magnet_share_of_ideal": 0.942,
                    "vs_curator_openai": 0.96,
                    "vs_curator_litellm": 0.99,
                },
                {
                    "latency_s": 1.0,
                    "concurrency": 128,
                    "magnet_share_of_ideal": 0.761,
                    "vs_curator_openai": 0.92,
                    "vs_curator_litellm": 0.98,
                },
            ],
            "client_cpu_ms_per_request": "2.6-3.1 (Curator OpenAI 2.3-3.1, Curator LiteLLM 5.2-6.0)",
            "peak_rss_mib": "217-222 (Curator about 320)",
        },
        "table": table,
        "cached_rerun": reruns,
        "runs": runs,
        "total_wall_s": round(time.perf_counter() - started, 1),
        "machine": machine(
            load_before,
            load_1min_at_run_starts={
                "min": round(min(loads), 2),
                "median": round(statistics.median(loads), 2),
                "max": round(max(loads), 2),
            },
            aiohttp=version("aiohttp"),
            note="shared machine: other jobs ran at the same time; compare ratios within a run, not absolute numbers",
        ),
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
