"""mDPO: DPO over whole multi-turn continuations (paper section 3.1; Xiong et al. 2024,
arXiv 2409.02392), built on TRL's ``DPOTrainer``.

A pair shares a prompt (system prompt with the functions, first user turn) and has two
continuations, chosen and rejected, each a list of messages with later user turns and tool
outputs in it. The log-probability of a continuation is the sum over **the assistant's own
tokens only**: user turns and tool outputs are part of the context but never scored. The loss
of a pair is

    L = -log sigmoid(beta * [(log pi(c) - log ref(c)) - (log pi(r) - log ref(r))])
        + lambda * NLL_pi(assistant tokens of c)

with the SFT model as the reference ``ref``, ``beta = train.beta`` and
``lambda = train.sft_weight`` (the paper writes L_SFT + lambda * L_mDPO; with a learning rate
to match, the two weightings are the same family). Assistant turns the two continuations
share before they diverge score the same under both and cancel in the margin; they still
count in the SFT term, which is the SFT loss on the whole chosen trajectory.

How it sits on TRL: ``DPOTrainer`` scores every position whose ``completion_mask`` is 1 and
runs its sigmoid + ``sft`` losses on the sums. :class:`MDPOTrainer` changes only what that
mask covers: the dataset is tokenized with the chat template's assistant mask
(``{% generation %}`` markers) and :class:`MultiTurnPreferenceCollator` lays that mask out
per token instead of "everything after the prompt". Reference model, LoRA, accelerate /
FSDP / DeepSpeed, logging and saving are TRL's.

Outside Dagster: ``magnet train mdpo`` (:mod:`magnet_assets.cli_train`), also under
``accelerate launch``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch
from trl import DPOConfig, DPOTrainer
from trl.data_utils import common_prefix_length
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import pad

from magnet_lib.settings import MagnetSettings
from magnet_lib.training.chat_format import template_messages
from magnet_lib.training.sft import (
    TrainResult,
    common_args,
    effective_train,
    logged,
    loss_curve,
    record_run,
)

# --------------------------------------------------------------------------- data


def preference_rows(rows: pl.DataFrame | Iterable[Any]) -> list[dict[str, Any]]:
    """``{"prompt", "chosen", "rejected", "tools"}`` dicts (decoded) from an ``mdpo_pairs``
    table or PreferencePair rows."""
    if isinstance(rows, pl.DataFrame):
        records = rows.select("prompt", "chosen", "rejected", "tools").to_dicts()
    else:
        records = [r if isinstance(r, dict) else {k: getattr(r, k) for k in ("prompt", "chosen", "rejected", "tools")} for r in rows]
    decode = lambda v: json.loads(v) if isinstance(v, str) else v
    return [{k: decode(r[k]) for k in ("prompt", "chosen", "rejected", "tools")} for r in records]


def preference_dataset(pairs: Sequence[dict[str, Any]]):
    """A conversational preference ``datasets.Dataset``: message lists kept as JSON per
    message (arguments of any shape round-trip), ``tools`` as a JSON string."""
    from datasets import Dataset, Features, Json, List, Value

    features = Features({"prompt": List(Json()), "chosen": List(Json()), "rejected": List(Json()), "tools": Value("string")})
    return Dataset.from_dict(
        {
            "prompt": [template_messages(p["prompt"]) for p in pairs],
            "chosen": [template_messages(p["chosen"]) for p in pairs],
            "rejected": [template_messages(p["rejected"]) for p in pairs],
            "tools": [json.dumps(p["tools"], ensure_ascii=False) for p in pairs],
        },
        features=features,
    )


def tokenize_pair(example: dict[str, Any], tokenizer) -> dict[str, list[int]]:
    """Token ids of the shared prompt and of both continuations, with a 0/1 mask per
    continuation token that is 1 exactly on the assistant's tokens."""
    tools = example.get("tools")
    tools = json.loads(tools) if isinstance(tools, str) else tools
    kwargs = {"tools": tools or None, "tokenize": True, "return_dict": True}
    prompt_ids = tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, **kwargs)["input_ids"]
    chosen = tokenizer.apply_chat_template(example["prompt"] + example["chosen"], return_assistant_tokens_mask=True, **kwargs)
    rejected = tokenizer.apply_chat_template(example["prompt"] + example["rejected"], return_assistant_tokens_mask=True, **kwargs)
    # the prompt ends where its rendering stops being a prefix of both full renderings
    n = min(common_prefix_length(prompt_ids, chosen["input_ids"]), common_prefix_length(prompt_ids, rejected["input_ids"]))
    return {
        "prompt_ids": chosen["input_ids"][:n],
        "chosen_ids": chosen["input_ids"][n:],
        "rejected_ids": rejected["input_ids"][n:],
        "chosen_mask": [int(b) for b in chosen["assistant_masks"][n:]],
        "rejected_mask": [int(b) for b in rejected["assistant_masks"][n:]],
    }


@dataclass
class MultiTurnPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator with the completion mask taken per token from the
    examples' ``chosen_mask`` / ``rejected_mask`` (assistant tokens) instead of "all of the
    completion". Output layout is TRL's: chosen rows first, then rejected rows."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        sequences, masks = [], []
        for side in ("chosen", "rejected"):
            for ex in examples:
                sequences.append(ex["prompt_ids"] + ex[f"{side}_ids"])
                masks.append([0] * len(ex["prompt_ids"]) + ex[f"{side}_mask"])
        if self.max_length is not None:
            sl = slice(None, self.max_length) if self.truncation_mode == "keep_start" else slice(-self.max_length, None)
            sequences, masks = [s[sl] for s in sequences], [m[sl] for m in masks]
        kw = {"padding_side": "right", "pad_to_multiple_of": self.pad_to_multiple_of}
        out = {
            "input_ids": pad([torch.tensor(s) for s in sequences], padding_value=self.pad_token_id, **kw),
            "attention_mask": pad([torch.ones(len(s), dtype=torch.long) for s in sequences], padding_value=0, **kw),
            "completion_mask": pad([torch.tensor(m, dtype=torch.long) for m in masks], padding_value=0, **kw),
        }
        for key in ("ref_chosen_logps", "ref_rejected_logps"):
            if key in examples[0]:
                out[key] = torch.tensor([ex[key] for ex in examples])
        return out


#: The TRL release whose private ``DPOTrainer._prepare_dataset`` :class:`MDPOTrainer`
#: overrides (pyproject pins it; tests/test_mdpo.py checks the signature and the call sites).
TRL_VERSION = "1.16.0"


class MDPOTrainer(DPOTrainer):
    """``DPOTrainer`` whose log-ratios sum only the assistant tokens of multi-turn
    continuations (mDPO). Takes the same arguments, ``args`` by keyword with
    ``remove_unused_columns=False`` (as :func:`mdpo_config` sets it: the mask columns reach
    the collator); the dataset has ``prompt``, ``chosen``, ``rejected`` (message lists) and
    ``tools``.

    On TRL's extension points: the collator and ``remove_unused_columns`` are public; TRL
    1.16 has no public way to tokenize a text dataset differently (every non-vision dataset
    goes through ``_prepare_dataset``, which yields ids without the assistant mask, and a
    pre-tokenized dataset is not accepted), so ``_prepare_dataset`` is overridden, pinned to
    :data:`TRL_VERSION`."""

    def __init__(self, *args, processing_class=None, data_collator=None, **kwargs):
        config: DPOConfig | None = kwargs.get("args")
        if config is None or config.remove_unused_columns:
            raise ValueError(
                "MDPOTrainer needs args=DPOConfig(..., remove_unused_columns=False) (mdpo_config sets it): "
                "the chosen_mask / rejected_mask columns must reach its collator"
            )
        if data_collator is None and processing_class is not None:
            tok = getattr(processing_class, "tokenizer", processing_class)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            data_collator = MultiTurnPreferenceCollator(
                pad_token_id=tok.pad_token_id,
                max_length=config.max_length,
                truncation_mode=config.truncation_mode,
                pad_to_multiple_of=config.pad_to_multiple_of,
            )
        super().__init__(*args, processing_class=processing_class, data_collator=data_collator, **kwargs)

    # private in TRL (pinned: TRL_VERSION): called by DPOTrainer.__init__ and .evaluate on every
    # non-vision dataset; ours tokenizes with the assistant mask instead of TRL's prompt/completion split
    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "chosen_mask" in dataset.column_names:  # already tokenized (evaluate() calls this again)
            return dataset
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        dataset = dataset.map(
            tokenize_pair,
            fn_kwargs={"tokenizer": tokenizer},
            remove_columns=dataset.column_names,
            desc=f"Tokenizing {dataset_name} multi-turn pairs",
        )

        # a pair teaches nothing when a side has no assistant token, or when truncation to
        # max_length leaves both sides the same (the divergence lies beyond it)
        def keep(ex: dict[str, Any]) -> bool:
            if 1 not in ex["chosen_mask"] or 1 not in ex["rejected_mask"]:
                return False
            if args.max_length is None:
                return True
            chosen, rejected = ex["prompt_ids"] + ex["chosen_ids"], ex["prompt_ids"] + ex["rejected_ids"]
            if args.truncation_mode == "keep_end":
                return chosen[-args.max_length :] != rejected[-args.max_length :]
            return len(ex["prompt_ids"]) < args.max_length and chosen[: args.max_length] != rejected[: args.max_length]

        return dataset.filter(keep, desc=f"Dropping {dataset_name} pairs with nothing to compare")


# --------------------------------------------------------------------------- training


def mdpo_config(settings: MagnetSettings, output_dir: Path, **overrides: Any) -> DPOConfig:
    """DPOConfig of an mDPO run: sigmoid loss + lambda * SFT loss on chosen, beta, paper lr."""
    train = effective_train(settings)
    args = common_args(train, output_dir, settings.seed, train.mdpo_batch_size, train.mdpo_learning_rate)
    args.update(
        beta=train.beta,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, train.sft_weight],
        precompute_ref_log_probs=False,
        remove_unused_columns=False,  # the prepared dataset holds only what the collator reads
    )
    args.update(overrides)
    return DPOConfig(**args)


def lora_config(settings: MagnetSettings):
    """LoRA adapter settings (paper, 14B: r=32, alpha=64), or None for full fine-tuning."""
    train = effective_train(settings)
    if not train.lora_r:
        return None
    from peft import LoraConfig

    return LoraConfig(r=train.lora_r, lora_alpha=train.lora_alpha, target_modules="all-linear", task_type="CAUSAL_LM", lora_dropout=0.0)


def train_mdpo(
    settings: MagnetSettings, rows: pl.DataFrame | Iterable[Any], sft_path: Path | None = None, output_dir: Path | None = None
) -> TrainResult:
    """Train the SFT checkpoint with mDPO on preference pairs; the SFT model is the
    reference. Saves a full model (LoRA merged) that loads with transformers, the tokenizer,
    the loss curve and the settings used to ``output_dir`` (default ``<checkpoints>/mdpo``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train = effective_train(settings)
    sft_path = Path(sft_path or Path(settings.checkpoints_dir) / "sft")
    out = Path(output_dir or Path(settings.checkpoints_dir) / "mdpo")
    out.mkdir(parents=True, exist_ok=True)
    pairs = preference_rows(rows)
    if not pairs:
        raise ValueError("mdpo: no preference pairs")
    if train.max_steps:  # a capped run never sees more than this many pairs: tokenize only those
        random.Random(settings.seed).shuffle(pairs)
        pairs = pairs[: train.max_steps * train.mdpo_batch_size]
    tokenizer = AutoTokenizer.from_pretrained(sft_path)
    model = AutoModelForCausalLM.from_pretrained(sft_path)
    peft_config = lora_config(settings)
    ref_model = None if peft_config else AutoModelForCausalLM.from_pretrained(sft_path)
    trainer = logged(
        MDPOTrainer(
            model=model,
            ref_model=ref_model,
            args=mdpo_config(settings, out),
            train_dataset=preference_dataset(pairs),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    if peft_config is None:
        trainer.save_model(str(out))  # gathers FSDP / ZeRO-3 shards
    else:  # save the adapter, then write base + adapter merged: a checkpoint transformers loads as is
        trainer.save_model(str(out / "adapter"))
        if trainer.is_world_process_zero():
            from peft import PeftModel

            merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sft_path), str(out / "adapter")).merge_and_unload()
            merged.save_pretrained(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
    curve = loss_curve(trainer.state.log_history, keys=("rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"))
    metrics = {
        "train_loss": output.training_loss,
        "first_loss": curve[0]["loss"] if curve else None,
        "final_loss": curve[-1]["loss"] if curve else None,
        "final_margin": curve[-1].get("rewards/margins") if curve else None,
        "steps": trainer.state.global_step,
        "pairs": len(trainer.train_dataset),
        "pairs_given": len(pairs),
        "train_tokens": int(trainer._total_train_tokens),
        "train_seconds": round(seconds, 2),
        "beta": train.beta,
        "sft_weight": train.sft_weight,
        "lora_r": train.lora_r,
    }
    result = TrainResult(path=out, metrics=metrics, loss_curve=curve)
    if trainer.is_world_process_zero():
        record_run(out, settings, train, result, extra={"stage": "mdpo", "reference": str(sft_path)})
    return result
