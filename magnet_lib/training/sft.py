"""Supervised fine-tuning on the SFT set (paper section 3.1, training details).

TRL's ``SFTTrainer`` on the ``train`` split of ``sft_set`` (``messages`` + ``tools``) with
``assistant_only_loss=True``: the loss covers the assistant's tokens only (its text, its tool
calls and its end-of-turn token); system, user and tool tokens are masked in every turn. The
mask comes from the chat template's ``{% generation %}`` markers (see
:mod:`magnet_lib.training.base_models`).

Defaults are the paper's (lr 1e-5 with linear decay, warm-up 0.1, 1 epoch, batch 64, max
length 8192). With the tiny default model, fields the user left unset take the CPU-sized
values of :data:`TINY_PROFILE` so the default run takes seconds.

Outside Dagster: ``magnet train sft`` (:mod:`magnet_assets.cli_train`), also under
``accelerate launch``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from magnet_lib.settings import MagnetSettings, TrainSettings
from magnet_lib.training.base_models import build_base_model
from magnet_lib.training.chat_format import template_messages

#: the per-step training log (loss, learning rate, ...): shown or not by the caller's logging
log = logging.getLogger("magnet.train")

#: CPU-sized values for the tiny default model (``train.cpu_profile``); a field the user set
#: (keyword, environment, settings file) keeps the user's value.
TINY_PROFILE: dict[str, Any] = {
    "max_length": 2048,
    "sft_learning_rate": 2e-3,
    "mdpo_learning_rate": 5e-4,
    "batch_size": 4,
    "mdpo_batch_size": 2,
    "micro_batch_size": 4,
    "max_steps": 16,
    "student_instances": 1,
    "student_max_new_tokens": 32,
    "student_max_steps": 3,
}
#: Student samples per instance under the CPU profile (the paper's 10 otherwise).
TINY_STUDENT_SAMPLES = 2

#: CPU-sized values for SmolLM2-135M (``train.base_model = "smollm2-135m"``) on a machine
#: without a GPU (``train.cpu_profile``): one AdamW step trains ~120 tokens/s on 2 cores, so
#: a few steps of a few conversations, short student replies and a handful of evaluation
#: episodes. Not the paper's values (those apply on a GPU, or with ``cpu_profile = false``);
#: the learning rates are raised to move a 135M model in 8 steps.
SMOLLM2_CPU_PROFILE: dict[str, Any] = {
    "max_length": 2048,
    "sft_learning_rate": 5e-5,
    "mdpo_learning_rate": 5e-6,
    "batch_size": 4,
    "mdpo_batch_size": 2,
    "micro_batch_size": 1,
    "max_steps": 8,
    "student_instances": 1,
    "student_max_new_tokens": 160,
    "student_max_steps": 3,
    "eval_episodes": 4,
}


def uses_cpu_profile(settings: MagnetSettings) -> bool:
    """The tiny default model on its CPU profile (its scores check the pipeline only)."""
    return settings.train.base_model == "tiny" and settings.train.cpu_profile


def cpu_profile(settings: MagnetSettings) -> dict[str, Any] | None:
    """The CPU-sized values of this run's base model, or None (paper values): the tiny model's
    always, SmolLM2's when no GPU is visible; only with ``train.cpu_profile``."""
    if not settings.train.cpu_profile:
        return None
    if settings.train.base_model == "tiny":
        return TINY_PROFILE
    if settings.train.base_model == "smollm2-135m":
        import torch

        return None if torch.cuda.is_available() else SMOLLM2_CPU_PROFILE
    return None


def effective_train(settings: MagnetSettings) -> TrainSettings:
    """The training settings of this run: the user's, with the base model's CPU profile
    (:data:`TINY_PROFILE`, :data:`SMOLLM2_CPU_PROFILE`) filling the fields left unset."""
    train = settings.train
    profile = cpu_profile(settings)
    if profile is None:
        return train
    unset = {k: v for k, v in profile.items() if k not in train.model_fields_set}
    return train.model_copy(update=unset)


def student_samples(settings: MagnetSettings) -> int:
    """Trajectories sampled per instance (paper: 10; the CPU profiles take fewer)."""
    if cpu_profile(settings) is not None and "student_samples" not in settings.distill.model_fields_set:
        return TINY_STUDENT_SAMPLES
    return settings.distill.student_samples


# --------------------------------------------------------------------------- data


def conversations(rows: pl.DataFrame | Iterable[Any], split: str | None = "train") -> list[dict[str, Any]]:
    """``{"messages", "tools"}`` dicts (decoded) from a Trajectory table or rows; a table with
    a ``split`` column keeps only ``split`` (None keeps all)."""
    if isinstance(rows, pl.DataFrame):
        frame = rows
        if split is not None and "split" in frame.columns:
            frame = frame.filter(pl.col("split") == split)
        records = frame.select("messages", "tools").to_dicts()
    else:
        records = [r if isinstance(r, dict) else {"messages": r.messages, "tools": r.tools} for r in rows]
    out = []
    for r in records:
        messages = json.loads(r["messages"]) if isinstance(r["messages"], str) else r["messages"]
        tools = json.loads(r["tools"]) if isinstance(r.get("tools"), str) else (r.get("tools") or [])
        out.append({"messages": messages, "tools": tools})
    return out


def chat_dataset(convs: Sequence[dict[str, Any]]):
    """A ``datasets.Dataset`` TRL reads as conversational: ``messages`` (each message kept as
    JSON, so tool-call arguments of any shape round-trip exactly) and ``tools`` (a JSON
    string, which TRL decodes)."""
    from datasets import Dataset, Features, Json, List, Value

    features = Features({"messages": List(Json()), "tools": Value("string")})
    return Dataset.from_dict(
        {
            "messages": [template_messages(c["messages"]) for c in convs],
            "tools": [json.dumps(c["tools"], ensure_ascii=False) for c in convs],
        },
        features=features,
    )


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """What a training run leaves: the checkpoint folder and its numbers."""

    path: Path
    metrics: dict[str, Any]
    loss_curve: list[dict[str, float]] = field(default_factory=list)


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def accumulation(batch_size: int, micro_batch_size: int) -> tuple[int, int]:
    """(per-device batch, gradient accumulation steps) making up the global ``batch_size``."""
    per_device = max(1, min(micro_batch_size, batch_size))
    return per_device, max(1, math.ceil(batch_size / (per_device * _world_size())))


def common_args(train: TrainSettings, output_dir: Path, seed: int, batch_size: int, learning_rate: float) -> dict[str, Any]:
    """TrainingArguments shared by SFT and mDPO."""
    import torch

    per_device, accum = accumulation(batch_size, train.micro_batch_size)
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return {
        "output_dir": str(output_dir),
        "learning_rate": learning_rate,
        "lr_scheduler_type": "linear",
        "warmup_steps": train.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        "num_train_epochs": train.sft_epochs,
        "max_steps": train.max_steps if train.max_steps else -1,
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": accum,
        "max_length": train.max_length,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": seed,
        "bf16": bf16,
        # recomputing activations pays off for a real model on GPUs, not for the tiny one on a CPU
        _checkpointing_name(): torch.cuda.is_available(),
        "dataloader_pin_memory": torch.cuda.is_available(),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def _checkpointing_name() -> str:
    """transformers 5 renamed ``gradient_checkpointing`` (the old name warns)."""
    from transformers import TrainingArguments

    return "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ else "gradient_checkpointing"


def logged(trainer: Any) -> Any:
    """``trainer`` with its per-step log sent to the ``magnet.train`` logger instead of
    printed (with ``disable_tqdm`` the Trainer prints every log dict on stdout)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    class LogCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_local_process_zero and logs:
                log.info("%s", logs)

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LogCallback())
    return trainer


def training_output(verbose: bool) -> None:
    """What the training libraries show on the terminal. Quiet: no progress bars (datasets,
    transformers), only their errors, no deprecation warnings a user cannot act on, and the
    per-step log kept in the loss curve and the asset's metadata only. Verbose: the libraries'
    own output, and the per-step log on stderr."""
    import datasets
    import transformers

    if verbose:
        if not log.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            log.addHandler(handler)
        log.setLevel(logging.INFO)
        return
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)


def loss_curve(log_history: list[dict[str, Any]], keys: Sequence[str] = ("loss",)) -> list[dict[str, float]]:
    """Per-step training log (step, loss, learning rate and any ``keys``) from a trainer."""
    curve = []
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            point = {"step": entry["step"], "loss": entry["loss"], "learning_rate": entry.get("learning_rate", 0.0)}
            point.update({k: entry[k] for k in keys if k in entry})
            curve.append(point)
    return curve


def record_run(out: Path, settings: MagnetSettings, train: TrainSettings, result: TrainResult, extra: dict[str, Any] | None = None) -> None:
    """Write ``loss_curve.json`` and ``run.json`` (settings used, without secrets; metrics)."""
    (out / "loss_curve.json").write_text(json.dumps(result.loss_curve, indent=1))
    record = {
        "settings": settings.public_dict(),
        "effective_train": train.model_dump(mode="json"),
        "metrics": result.metrics,
        **(extra or {}),
    }
    (out / "run.json").write_text(json.dumps(record, indent=2, default=str))


def train_sft(settings: MagnetSettings, rows: pl.DataFrame | Iterable[Any], output_dir: Path | None = None) -> TrainResult:
    """Fine-tune the base model on the train split of ``rows`` (an ``sft_set`` table or
    Trajectory rows); saves model, tokenizer, loss curve and the settings used to
    ``output_dir`` (default ``<checkpoints>/sft``)."""
    from trl import SFTConfig, SFTTrainer

    train = effective_train(settings)
    convs = conversations(rows)
    if not convs:
        raise ValueError("sft: no training conversations (is the 'train' split of sft_set empty?)")
    out = Path(output_dir or Path(settings.checkpoints_dir) / "sft")
    out.mkdir(parents=True, exist_ok=True)
    if train.max_steps:  # a capped run never sees more than this many conversations: tokenize only those
        random.Random(settings.seed).shuffle(convs)
        convs = convs[: train.max_steps * train.batch_size]
    model, tokenizer = build_base_model(settings, corpus=convs)
    args = SFTConfig(
        **common_args(train, out, settings.seed, train.batch_size, train.sft_learning_rate),
        assistant_only_loss=True,
        dataset_num_proc=None,
    )
    trainer = logged(SFTTrainer(model=model, args=args, train_dataset=chat_dataset(convs), processing_class=tokenizer))
    if len(trainer.train_dataset) == 0:  # TRL drops a conversation whose assistant tokens truncation removed entirely
        raise ValueError(
            f"sft: all {len(convs)} conversations lost every assistant token to truncation at train.max_length={train.max_length} "
            "(the system prompt with its tools and the first user turn fill it); raise train.max_length"
        )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    trainer.save_model(str(out))  # gathers FSDP / ZeRO-3 shards; writes the tokenizer too
    curve = loss_curve(trainer.state.log_history, keys=("mean_token_accuracy", "num_tokens"))
    metrics = {
        "train_loss": output.training_loss,
        "first_loss": curve[0]["loss"] if curve else None,
        "final_loss": curve[-1]["loss"] if curve else None,
        "steps": trainer.state.global_step,
        "conversations": len(convs),
        "train_tokens": int(trainer.state.num_input_tokens_seen or 0) or (curve[-1].get("num_tokens", 0) if curve else 0),
        "train_seconds": round(seconds, 2),
        "base_model": train.base_model,
    }
    result = TrainResult(path=out, metrics=metrics, loss_curve=curve)
    if trainer.is_world_process_zero():
        record_run(out, settings, train, result, extra={"stage": "sft"})
    return result
