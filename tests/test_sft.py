"""SFT with TRL on the tiny default model: assistant-only loss masks, a real run, a loadable checkpoint."""

from __future__ import annotations

import json
import logging

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from magnet_lib.settings import load_settings
from magnet_lib.training.base_models import build_tiny
from magnet_lib.training.sft import (
    chat_dataset,
    conversations,
    effective_train,
    train_sft,
)
from tests.training_support import navigation_episode, sft_rows


def test_collated_labels_cover_assistant_tokens_only(tmp_path):
    from trl import SFTConfig, SFTTrainer

    _, traj = navigation_episode()
    convs = conversations([traj])
    model, tok = build_tiny(convs)
    args = SFTConfig(
        output_dir=str(tmp_path),
        assistant_only_loss=True,
        max_length=4096,
        report_to=[],
        per_device_train_batch_size=1,
        bf16=False,
        gradient_checkpointing=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=chat_dataset(convs), processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    trained = tok.decode(ids[labels != -100])
    ignored = tok.decode(ids[labels == -100])
    # every assistant action is trained on, with its end-of-turn token
    for m in traj.messages:
        if m["role"] == "assistant" and m.get("content"):
            assert m["content"] in trained
        for tc in m.get("tool_calls") or []:
            assert f'"name": "{tc["function"]["name"]}"' in trained
    assert trained.count("<|im_end|>") == sum(m["role"] == "assistant" for m in traj.messages)
    # system, user and tool tokens are masked in every turn
    for m in traj.messages:
        if m["role"] in ("user", "tool"):
            assert m["content"] not in trained and m["content"] in ignored
    assert "<|im_start|>" not in trained and "expert at composing" not in trained.lower()
    assert "<tool_response>" not in trained


def test_train_sft_runs_saves_and_generates(magnet_home, monkeypatch, capsys, caplog):
    monkeypatch.setenv("MAGNET_TRAIN_MAX_STEPS", "2")
    monkeypatch.setenv("MAGNET_TRAIN_MAX_LENGTH", "2048")  # the 12 navigation specs are written once in the system turn
    settings = load_settings()
    assert effective_train(settings).max_steps == 2 and effective_train(settings).sft_learning_rate == 2e-3
    with caplog.at_level(logging.INFO, logger="magnet.train"):
        result = train_sft(settings, sft_rows(2, 2))
    # the per-step log goes to the magnet.train logger (shown by `magnet run --verbose`), not stdout
    assert "'loss'" not in capsys.readouterr().out
    assert sum("'loss'" in r.getMessage() for r in caplog.records if r.name == "magnet.train") >= 2
    assert result.metrics["steps"] == 2 and result.metrics["train_tokens"] > 0
    curve = json.loads((result.path / "loss_curve.json").read_text())
    assert len(curve) == 2 and all(p["loss"] > 0 for p in curve)
    run = json.loads((result.path / "run.json").read_text())
    assert run["effective_train"]["max_steps"] == 2 and "api_key" not in json.dumps(run["settings"]["llm"])
    model = AutoModelForCausalLM.from_pretrained(result.path)
    tok = AutoTokenizer.from_pretrained(result.path)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Convert 3 miles to km."}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


def test_paper_defaults_without_the_cpu_profile(magnet_home, monkeypatch):
    monkeypatch.setenv("MAGNET_TRAIN_BASE_MODEL", "some/model")
    train = effective_train(load_settings())
    assert (train.sft_learning_rate, train.warmup_ratio, train.sft_epochs, train.max_length, train.max_steps) == (
        1e-5,
        0.1,
        1.0,
        8192,
        None,
    )


def test_a_real_base_model_path_gets_a_training_template(magnet_home, tmp_path, monkeypatch):
    """A local model whose template is Qwen2.5's (no generation markers): TRL's training
    variant is swapped in, SFT masks the assistant turns, the checkpoint keeps that template."""
    from pathlib import Path

    import trl

    monkeypatch.setenv("MAGNET_TRAIN_MAX_STEPS", "1")
    monkeypatch.setenv("MAGNET_TRAIN_MAX_LENGTH", "4096")
    qwen = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    _, traj = navigation_episode()
    model, tok = build_tiny(conversations([traj]))
    tok.chat_template = qwen
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    settings = load_settings(train={"base_model": str(tmp_path / "base")})
    assert effective_train(settings).max_steps == 1 and effective_train(settings).sft_learning_rate == 1e-5  # no CPU profile
    result = train_sft(settings, [traj])
    saved = AutoTokenizer.from_pretrained(result.path)
    from trl.chat_template_utils import has_generation_markers

    from magnet_lib.training.chat_format import template_messages

    assert has_generation_markers(saved.chat_template) and "# Tools" in saved.chat_template  # Qwen2.5's, marked

    out = saved.apply_chat_template(template_messages(traj.messages), tools=traj.tools, return_dict=True, return_assistant_tokens_mask=True)
    trained = saved.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert '"name": "get_distance"' in trained and traj.messages[1]["content"] not in trained


def test_a_max_length_that_truncates_away_every_answer_is_a_clear_error(magnet_home, monkeypatch):
    """TRL drops a conversation whose assistant tokens truncation removes entirely; with all of
    them gone the trainer failed deep inside torch ('num_samples=0')."""
    monkeypatch.setenv("MAGNET_TRAIN_MAX_STEPS", "1")
    monkeypatch.setenv("MAGNET_TRAIN_MAX_LENGTH", "64")  # the system turn alone is longer
    with pytest.raises(ValueError, match=r"lost every assistant token to truncation at train.max_length=64"):
        train_sft(load_settings(), sft_rows(1, 0))
