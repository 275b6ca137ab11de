"""Wall-clock time of the default offline pipeline: ``magnet run`` on a fresh home (the
built-in tools, the tiny model, every asset through eval_report), with the per-asset times
the run prints. This measure used to be an assertion in tests/test_training_assets.py.

    HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True python -m benchmarks.pipeline_time \
        [--home DIR] [--out benchmarks/results/pipeline_time.json]

The number depends on the machine and its load (the load average is recorded beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMED = re.compile(r"materialized (\S+)\s+([0-9.]+)s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="home to run in (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pipeline_time.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        load_before = os.getloadavg()
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "magnet_assets.cli", "run", "--home", str(home)], capture_output=True, text=True, cwd=ROOT
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"magnet run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = {
        "command": "python -m benchmarks.pipeline_time " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(seconds, 1),
        "asset_seconds_as_printed": {name: float(s) for name, s in TIMED.findall(done.stdout)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
