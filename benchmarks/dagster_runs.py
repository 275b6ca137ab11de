"""Fresh `magnet run` before (main's commit 5283ca8: one execute_in_process run after another,
its own signature bookkeeping) and after (Dagster's stale status, category runs side by side)
on the same machine, one after the other; then the no-op rerun and one changed category.

    git archive 5283ca8 | tar -x -C /tmp/before_dagster    # once
    python benchmarks/dagster_runs.py --before /tmp/before_dagster [--asset sft_set]

Both run the built-in pool plus one user category (``marine``, the one that changes), offline,
up to ``--asset``. Writes benchmarks/results/dagster_runs.json with the command, the machine and
its load average before and after each call (the machine may be shared), and per call the
phases: start-up (interpreter, imports, settings: wall time minus what ``run_pipeline``
reports), the Dagster runs (their count, the span from the first start to the last end, the
sum of their durations) and the rest of ``run_pipeline`` (planning: asking Dagster what is
stale, lineage, waits between waves). ``import_seconds`` is ``import magnet_assets.orchestrate``
of each tree alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env(code: Path, home: Path, tools: Path) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=str(code),
        MAGNET_HOME=str(home),
        MAGNET_TOOLS_DIR=str(tools),
        HF_HUB_OFFLINE="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        TOKENIZERS_PARALLELISM="false",
        COLUMNS="250",  # the summary line on one line
    )
    for var in ("MAGNET_LLM_MODEL", "MAGNET_LLM_API_BASE", "MAGNET_CONFIG", "MAGNET_RUN_EXECUTOR"):
        env.pop(var, None)
    # Python's default: modules compiled once and their bytecode cached (some hosts set
    # PYTHONDONTWRITEBYTECODE, which recompiles every module in every process); the same for both trees
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _runs_since(home: Path, since: float) -> dict:
    """The Dagster runs a call made (from the instance under the home)."""
    import dagster as dg

    dagster_home = home / "dagster"
    if not (dagster_home / "dagster.yaml").exists():
        return {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = [r for r in instance.get_run_records(limit=1000) if r.create_timestamp.timestamp() >= since]
    spans = [(r.start_time, r.end_time) for r in records if r.start_time and r.end_time]
    if not spans:
        return {"runs": len(records)}
    return {
        "runs": len(records),
        "runs_span_s": round(max(e for _, e in spans) - min(s for s, _ in spans), 2),
        "runs_sum_s": round(sum(e - s for s, e in spans), 2),
    }


def magnet_run(code: Path, home: Path, tools: Path, asset: str) -> dict:
    load_before = os.getloadavg()
    since = time.time()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "magnet_assets.cli", "run", "--asset", asset],
        env=_env(code, home, tools),
        cwd=code,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if "materialized" in line]
    found = re.search(r"materialized in ([0-9.]+)s", proc.stdout.replace("\n", " "))
    pipeline = float(found.group(1)) if found else None
    runs = _runs_since(home, since)
    phases = {"startup_s": round(seconds - pipeline, 2) if pipeline is not None else None, "run_pipeline_s": pipeline, **runs}
    if pipeline is not None and "runs_span_s" in runs:
        phases["planning_and_waits_s"] = round(pipeline - runs["runs_span_s"], 2)
    return {
        "seconds": round(seconds, 2),
        "exit_code": proc.returncode,
        "materialized_lines": len(lines),
        "phases": phases,
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "tail": proc.stdout[-600:] + proc.stderr[-600:],
    }


def import_seconds(code: Path, home: Path, tools: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import magnet_assets.orchestrate"], env=_env(code, home, tools), cwd=code, check=True, capture_output=True
    )
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, type=Path, help="an export of main's commit 5283ca8")
    parser.add_argument("--asset", default="sft_set")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dagster_runs.json")
    args = parser.parse_args()
    from tests.test_incremental import marine

    work = Path(tempfile.mkdtemp(prefix="magnet-bench-"))
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "host_PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
            "bytecode_cache": "written and read (Python's default) in both trees; compiled first (compileall)",
        },
        "asset": args.asset,
    }
    try:
        for name, code in (("before", args.before.resolve()), ("after", ROOT)):
            tools = work / name / "tools"
            (tools / "marine").mkdir(parents=True)
            (tools / "marine" / "marine.json").write_text(json.dumps(marine()))
            home = work / name / "home"
            # bytecode compiled first, as installing a wheel does
            subprocess.run([sys.executable, "-m", "compileall", "-q", "magnet_assets", "magnet_lib", "graph_db"], cwd=code, check=False)
            imports = import_seconds(code, home, tools)
            fresh = magnet_run(code, home, tools, args.asset)
            noop = magnet_run(code, home, tools, args.asset)
            (tools / "marine" / "marine.json").write_text(json.dumps(marine("Convert a length from feet to metres or back.")))
            changed = magnet_run(code, home, tools, args.asset)
            result[name] = {"import_seconds": imports, "fresh": fresh, "noop_rerun": noop, "one_changed_category": changed}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))
        b, a = result["before"], result["after"]
        result["fresh_speedup"] = round(b["fresh"]["seconds"] / a["fresh"]["seconds"], 2)
        result["after_changed_vs_fresh"] = round(a["one_changed_category"]["seconds"] / a["fresh"]["seconds"], 3)
        args.out.write_text(json.dumps(result, indent=2))
        print(json.dumps({k: v for k, v in result.items() if k not in ("before", "after")}, indent=2))
        for name in ("before", "after"):
            print(name, {k: (v["seconds"], v["phases"]) for k, v in result[name].items() if isinstance(v, dict)})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
