"""Fresh `magnet run` before (main's commit 5283ca8: one execute_in_process run after another,
its own signature bookkeeping) and after (Dagster's stale status, category runs side by side)
on the same machine, one after the other; then the no-op rerun and one changed category.

    git archive 5283ca8 | tar -x -C /tmp/before_dagster    # once
    python benchmarks/dagster_runs.py --before /tmp/before_dagster [--asset sft_set]

Both run the built-in pool plus one user category (``marine``, the one that changes), offline,
up to ``--asset``. Writes benchmarks/results/dagster_runs.json with the command and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def magnet_run(code: Path, home: Path, tools: Path, asset: str) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=str(code),
        MAGNET_HOME=str(home),
        MAGNET_TOOLS_DIR=str(tools),
        HF_HUB_OFFLINE="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        TOKENIZERS_PARALLELISM="false",
    )
    for var in ("MAGNET_LLM_MODEL", "MAGNET_LLM_API_BASE", "MAGNET_CONFIG", "MAGNET_RUN_EXECUTOR"):
        env.pop(var, None)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "magnet_assets.cli", "run", "--asset", asset], env=env, cwd=code, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if "materialized" in line]
    return {
        "seconds": round(seconds, 2),
        "exit_code": proc.returncode,
        "materialized_lines": len(lines),
        "tail": proc.stdout[-600:] + proc.stderr[-600:],
    }


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
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "asset": args.asset,
    }
    try:
        for name, code in (("before", args.before.resolve()), ("after", ROOT)):
            tools = work / name / "tools"
            (tools / "marine").mkdir(parents=True)
            (tools / "marine" / "marine.json").write_text(json.dumps(marine()))
            home = work / name / "home"
            fresh = magnet_run(code, home, tools, args.asset)
            noop = magnet_run(code, home, tools, args.asset)
            (tools / "marine" / "marine.json").write_text(json.dumps(marine("Convert a length from feet to metres or back.")))
            changed = magnet_run(code, home, tools, args.asset)
            result[name] = {"fresh": fresh, "noop_rerun": noop, "one_changed_category": changed}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))
        b, a = result["before"], result["after"]
        result["fresh_speedup"] = round(b["fresh"]["seconds"] / a["fresh"]["seconds"], 2)
        result["after_changed_vs_fresh"] = round(a["one_changed_category"]["seconds"] / a["fresh"]["seconds"], 3)
        args.out.write_text(json.dumps(result, indent=2))
        print(json.dumps({k: v for k, v in result.items() if k not in ("before", "after")}, indent=2))
        for name in ("before", "after"):
            print(name, {k: v["seconds"] for k, v in result[name].items()})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
