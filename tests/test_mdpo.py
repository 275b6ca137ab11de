"""mDPO on TRL: the loss against a hand computation, the assistant-only mask, real steps."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOTrainer

from magnet_lib.settings import load_settings
from magnet_lib.training.base_models import build_tiny
from magnet_lib.training.chat_format import template_messages
from magnet_lib.training.mdpo import (
    TRL_VERSION,
    MDPOTrainer,
    mdpo_config,
    preference_dataset,
    tokenize_pair,
    train_mdpo,
)
from magnet_lib.training.sft import conversations
from tests.training_support import navigation_episode

BETA, LAMBDA = 0.3, 0.5


def hand_pair() -> dict:
    """Chosen: turns 1-2 of the reference; rejected: turn 2 without the nested conversion."""
    _, traj = navigation_episode()
    m = traj.messages
    users = [i for i, x in enumerate(m) if x["role"] == "user"]
    chosen = m[2 : users[2]]
    turn2 = m[users[1] : users[2]]
    rejected = m[2 : users[1]] + [turn2[0], turn2[1], turn2[2], {"role": "assistant", "content": "It is 16 miles away."}]
    return {"prompt": m[:2], "chosen": chosen, "rejected": rejected, "tools": traj.tools}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pair = hand_pair()
    model, tok = build_tiny(conversations([{"messages": pair["prompt"] + pair["chosen"], "tools": pair["tools"]}]))
    ref = copy.deepcopy(model)
    with torch.no_grad():  # a reference that differs from the policy, so the log-ratios are not zero
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    settings = load_settings(home=str(tmp_path_factory.mktemp("home")), train={"beta": BETA, "sft_weight": LAMBDA, "max_length": 4096})
    args = mdpo_config(
        settings,
        tmp_path_factory.mktemp("out"),
        max_steps=1,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
    )
    trainer = MDPOTrainer(model=model, ref_model=ref, args=args, train_dataset=preference_dataset([pair]), processing_class=tok)
    return pair, tok, trainer


def test_the_private_trl_override_still_fits_trl():
    """MDPOTrainer overrides DPOTrainer._prepare_dataset, private in TRL: a TRL whose method
    changes name, signature or call sites must fail here, not train on the wrong mask."""
    import trl

    assert trl.__version__ == TRL_VERSION, f"MDPOTrainer._prepare_dataset was written against TRL {TRL_VERSION}; review it"
    expected = ["self", "dataset", "processing_class", "args", "dataset_name"]
    assert list(inspect.signature(DPOTrainer._prepare_dataset).parameters) == expected
    assert list(inspect.signature(MDPOTrainer._prepare_dataset).parameters) == expected
    for caller in (DPOTrainer.__init__, DPOTrainer.evaluate):  # where TRL tokenizes a dataset
        assert "self._prepare_dataset(" in inspect.getsource(caller), caller.__qualname__


def test_a_config_that_would_drop_the_mask_columns_is_refused(setup):
    _, tok, trainer = setup
    args = copy.copy(trainer.args)  # a new DPOConfig would reset accelerate's state under the module's trainer
    args.remove_unused_columns = True
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        MDPOTrainer(model=trainer.model, args=args, train_dataset=preference_dataset([hand_pair()]), processing_class=tok)


def sequence_logps(model, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hand computation: per-token log-probs of the tokens with mask 1 (each scored from its prefix)."""
    logits = model(input_ids=ids[None]).logits[0, :-1]
    logps = torch.log_softmax(logits.float(), dim=-1).gather(1, ids[1:, None])[:, 0]
    scored = logps[mask[1:].bool()]
    return scored.sum(), scored


def test_mask_is_exactly_the_assistant_tokens(setup):
    pair, tok, trainer = setup
    batch = trainer.data_collator([trainer.train_dataset[0]])
    for row, side in ((0, "chosen"), (1, "rejected")):
        ids, mask = batch["input_ids"][row], batch["completion_mask"][row]
        full = tok.apply_chat_template(
            template_messages(pair["prompt"] + pair[side]),
            tools=pair["tools"],
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        assert ids[: len(full["input_ids"])].tolist() == full["input_ids"]
        assert mask[: len(full["input_ids"])].tolist() == full["assistant_masks"]
        scored = tok.decode(ids[mask.bool()])
        for m in pair[side]:
            if m["role"] in ("user", "tool"):
                assert m["content"] not in scored  # later user turns and tool outputs: context only
            elif m.get("content"):
                assert m["content"] in scored
        assert scored.count("<|im_end|>") == sum(m["role"] == "assistant" for m in pair[side])


def test_loss_equals_hand_computation(setup):
    pair, tok, trainer = setup
    batch = trainer.data_collator([trainer.train_dataset[0]])
    model, ref = trainer.model, trainer.ref_model
    model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        (pc, chosen_tokens), (pr, _) = (sequence_logps(model, batch["input_ids"][i], batch["completion_mask"][i]) for i in (0, 1))
        (rc, _), (rr, _) = (sequence_logps(ref, batch["input_ids"][i], batch["completion_mask"][i]) for i in (0, 1))
    margin = (pc - rc) - (pr - rr)
    expected = -F.logsigmoid(BETA * margin) + LAMBDA * (-chosen_tokens.mean())
    assert abs(margin.item()) > 1e-3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)


def test_masked_positions_get_zero_gradient(setup):
    pair, tok, trainer = setup
    batch = trainer.data_collator([trainer.train_dataset[0]])
    model = trainer.model
    captured = {}

    def keep(_module, _inputs, output):  # final hidden states feed the LM head position by position
        output.retain_grad()
        captured["h"] = output

    handle = model.model.norm.register_forward_hook(keep)
    try:
        model.zero_grad()
        trainer.compute_loss(model, dict(batch)).backward()
    finally:
        handle.remove()
    grad = captured["h"].grad.abs().sum(-1)  # (2, seq): row 0 chosen, row 1 rejected
    scored_next = batch["completion_mask"][:, 1:].bool()  # position t predicts token t+1
    assert (grad[:, :-1][~scored_next] == 0).all()  # system, user, tool, padding: no gradient at all
    assert (grad[:, :-1][scored_next] > 0).all()
    assert grad[:, -1].eq(0).all()


def test_identical_continuations_have_zero_margin(setup):
    pair, tok, trainer = setup
    same = dict(pair, rejected=pair["chosen"])
    assert len(trainer._prepare_dataset(preference_dataset([same]), tok, trainer.args, "same")) == 0  # nothing to compare: dropped
    example = tokenize_pair(preference_dataset([same])[0], tok)
    batch = trainer.data_collator([example])
    with torch.no_grad():
        trainer.compute_loss(trainer.model, dict(batch))
    mode = "train" if trainer.model.training else "eval"
    assert trainer._metrics[mode]["rewards/margins"][-1] == pytest.approx(0.0, abs=1e-5)


def test_train_mdpo_real_steps_full_and_lora(magnet_home, monkeypatch):
    from magnet_lib.training.sft import train_sft
    from tests.training_support import sft_rows

    monkeypatch.setenv("MAGNET_TRAIN_MAX_STEPS", "3")  # the first step is the warm-up's (lr 0)
    monkeypatch.setenv("MAGNET_TRAIN_MAX_LENGTH", "2048")  # the navigation specs are written once in the system turn
    settings = load_settings()
    sft = train_sft(settings, sft_rows(1, 2))
    pairs = [hand_pair(), hand_pair()]
    full = train_mdpo(settings, pairs)
    assert full.metrics["steps"] == 3 and full.metrics["pairs"] == 2 and (full.path / "loss_curve.json").exists()
    lora = train_mdpo(
        load_settings(train={"lora_r": 4, "lora_alpha": 8, "max_steps": 3, "max_length": 2048}), pairs, output_dir=magnet_home / "lora"
    )
    for path in (full.path, lora.path):
        model = AutoModelForCausalLM.from_pretrained(path)
        tok = AutoTokenizer.from_pretrained(path)
        before = AutoModelForCausalLM.from_pretrained(sft.path)
        assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values()))
        prompt = tok.apply_chat_template(
            template_messages(pairs[0]["prompt"]), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        assert model.generate(**prompt, max_new_tokens=3, do_sample=False).shape[1] > prompt["input_ids"].shape[1]
