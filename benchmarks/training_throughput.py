"""Training throughput and peak memory: SFT, our mDPO and TRL's stock DPO on the same pairs.

    HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false python benchmarks/training_throughput.py \\
        --home .magnet --steps 12 --out benchmarks/results/training_throughput.json

Inputs: the SFT checkpoint (``<home>/checkpoints/sft``) and the pairs (``<home>/storage/
mdpo_pairs.parquet``) of a run (``magnet run``). Every configuration trains the same model
from the same checkpoint on the same pairs with the same batch (``--batch`` pairs, or
conversations for SFT), max length and loss (sigmoid + lambda * SFT), in its own process so
that its peak memory is its own:

- ``sft``: TRL ``SFTTrainer`` (assistant-only loss) on prompt + chosen of each pair;
- ``mdpo``: :class:`magnet_lib.training.mdpo.MDPOTrainer` (log-ratios over assistant tokens only);
- ``dpo``: TRL's stock ``DPOTrainer`` (every token after the prompt scored, later user turns
  and tool outputs included).

Training tokens per second counts the non-padding tokens of every sequence the step runs
(chosen and rejected for the DPO variants), over the steps after ``--warmup`` (optimizer
step included). Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, else the
process's peak resident set. ``masking_overhead`` = 1 - mDPO tokens/s / stock DPO tokens/s
(target: under 10%; negative means mDPO is faster: it scores fewer positions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_one(kind: str, home: Path, steps: int, warmup: int, batch: int, max_length: int) -> dict:
    import polars as pl
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from magnet_lib.settings import load_settings
    from magnet_lib.training.mdpo import (
        MDPOTrainer,
        mdpo_config,
        preference_dataset,
        preference_rows,
    )
    from magnet_lib.training.sft import chat_dataset, common_args, effective_train

    settings = load_settings(
        home=str(home),
        train={"max_length": max_length, "max_steps": steps, "mdpo_batch_size": batch, "batch_size": batch, "micro_batch_size": batch},
    )
    train = effective_train(settings)
    pairs = preference_rows(pl.read_parquet(settings.storage_dir / "mdpo_pairs.parquet"))
    random.Random(0).shuffle(pairs)
    pairs = pairs[: steps * batch]
    sft_path = settings.checkpoints_dir / "sft"
    tokenizer = AutoTokenizer.from_pretrained(sft_path)
    model = AutoModelForCausalLM.from_pretrained(sft_path)
    out = Path(f"/tmp/magnet-bench-{kind}-{os.getpid()}")
    counted: list[int] = []
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

    def counting(collator):
        def collate(examples):
            batch_ = collator(examples)
            counted.append(int(batch_["attention_mask"].sum()))
            return batch_

        return collate

    if kind == "sft":
        from trl import SFTConfig, SFTTrainer

        convs = [{"messages": p["prompt"] + p["chosen"], "tools": p["tools"]} for p in pairs]
        args = SFTConfig(**common_args(train, out, settings.seed, batch, 1e-4), assistant_only_loss=True)
        trainer = SFTTrainer(model=model, args=args, train_dataset=chat_dataset(convs), processing_class=tokenizer)
    else:
        args = mdpo_config(settings, out, learning_rate=1e-5)
        ref = AutoModelForCausalLM.from_pretrained(sft_path)
        cls = MDPOTrainer
        if kind == "dpo":
            from trl import (
                DPOTrainer as cls,
            )
        trainer = cls(model=model, ref_model=ref, args=args, train_dataset=preference_dataset(pairs), processing_class=tokenizer)
    trainer.data_collator = counting(trainer.data_collator)
    trainer.add_callback(Clock())
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - started
    # the collator runs once per micro-batch, a step later than the clock's first mark
    per_step = max(1, len(counted) // max(1, len(marks)))
    timed_tokens = sum(counted[warmup * per_step : len(marks) * per_step])
    timed_seconds = marks[-1] - marks[warmup - 1] if len(marks) > warmup else total
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
        memory_kind = "cuda_max_allocated_mib"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        memory_kind = "cpu_peak_rss_mib"
    return {
        "kind": kind,
        "steps": len(marks),
        "timed_steps": max(0, len(marks) - warmup),
        "tokens_per_step": round(timed_tokens / max(1, len(marks) - warmup), 1),
        "train_tokens_per_s": round(timed_tokens / timed_seconds, 1),
        "seconds_per_step": round(timed_seconds / max(1, len(marks) - warmup), 3),
        "peak_memory_mib": round(peak, 1),
        "memory_kind": memory_kind,
        "pairs": len(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", default=os.environ.get("MAGNET_HOME", ".magnet"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration; the median is reported")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training_throughput.json"))
    ns = parser.parse_args()
    home = Path(ns.home).resolve()
    if ns.one:
        print("RESULT " + json.dumps(run_one(ns.one, home, ns.steps, ns.warmup, ns.batch, ns.max_length)))
        return

    import torch
    import transformers
    import trl

    results: dict[str, list[dict]] = {}
    for _ in range(ns.repeats):
        for kind in ("sft", "mdpo", "dpo"):
            cmd = [
                sys.executable,
                __file__,
                "--one",
                kind,
                "--home",
                str(home),
                "--steps",
                str(ns.steps),
                "--warmup",
                str(ns.warmup),
                "--batch",
                str(ns.batch),
                "--max-length",
                str(ns.max_length),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
            results.setdefault(kind, []).append(json.loads(line[len("RESULT ") :]))
            print(kind, results[kind][-1], flush=True)

    def median(kind: str) -> dict:
        runs = sorted(results[kind], key=lambda r: r["train_tokens_per_s"])
        return {**runs[len(runs) // 2], "runs_tokens_per_s": [r["train_tokens_per_s"] for r in results[kind]]}

    summary = {k: median(k) for k in results}
    overhead = 1 - summary["mdpo"]["train_tokens_per_s"] / summary["dpo"]["train_tokens_per_s"]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    report = {
        "benchmark": "training_throughput",
        "command": "python benchmarks/training_throughput.py " + " ".join(a for a in sys.argv[1:]),
        "device": gpu
        or f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()})",
        "model": json.loads((home / "checkpoints" / "sft" / "config.json").read_text()).get("model_type"),
        "model_parameters": None,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "setup": {
            "steps": ns.steps,
            "warmup_steps": ns.warmup,
            "batch": ns.batch,
            "max_length": ns.max_length,
            "repeats": ns.repeats,
            "loss": "sigmoid + 1.0 * sft (both DPO variants)",
        },
        "results": summary,
        "masking_overhead": round(overhead, 4),
        "target": "masking_overhead < 0.10",
        "meets_target": overhead < 0.10,
    }
    from transformers import AutoModelForCausalLM

    report["model_parameters"] = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(home / "checkpoints" / "sft").parameters())
    Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
    Path(ns.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v["train_tokens_per_s"] for k, v in summary.items()}), "masking overhead", report["masking_overhead"])


if __name__ == "__main__":
    main()
