"""The locally built default base model: tokenizer, chat template, tool-call parsing."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from magnet_lib.models import Call
from magnet_lib.tool_calls import parse_response
from magnet_lib.training.base_models import CHAT_TEMPLATE, END_OF_TURN, build_tiny, training_chat_template
from magnet_lib.training.chat_format import template_messages
from magnet_lib.training.sft import conversations
from tests.training_support import navigation_episode


@pytest.fixture(scope="module")
def tiny():
    _, traj = navigation_episode()
    convs = conversations([traj])
    model, tok = build_tiny(convs)
    return model, tok, traj


def test_template_renders_calls_tool_messages_and_is_prefix_preserving(tiny):
    _, tok, traj = tiny
    msgs = template_messages(traj.messages)
    full = tok.apply_chat_template(msgs, tools=traj.tools, tokenize=False)
    assert '<tool_call>\n{"name": "get_distance", "arguments": {"origin_place_id": ' in full
    assert full.count("<tool_response>") == sum(m["role"] == "tool" for m in msgs)
    # the stored system prompt holds the instructions, ``tools`` the functions: written once, after the instructions
    head = full.split("<|im_end|>")[0]
    assert head.startswith("<|im_start|>system\n" + traj.messages[0]["content"]) and full.count("<tools>") == 1
    for spec in traj.tools:
        assert full.count(json.dumps(spec, ensure_ascii=False)) == 1
    # every prefix ending before an assistant message renders as the generation prompt of the full text
    for i, m in enumerate(msgs):
        if m["role"] == "assistant":
            prefix = tok.apply_chat_template(msgs[:i], tools=traj.tools, tokenize=False, add_generation_prompt=True)
            assert full.startswith(prefix)
    no_system = tok.apply_chat_template(msgs[1:3], tools=traj.tools, tokenize=False)
    assert no_system.startswith("<|im_start|>system\n<tools>\n{")


def test_generated_text_parses_back_into_calls(tiny):
    _, tok, traj = tiny
    msg = template_messages(traj.messages)[2]
    text = tok.apply_chat_template(template_messages(traj.messages)[:3], tokenize=False).split("<|im_start|>assistant\n")[-1]
    parsed = parse_response(text, stop=END_OF_TURN)
    assert parsed.calls == [Call(name=msg["tool_calls"][0]["function"]["name"], arguments=msg["tool_calls"][0]["function"]["arguments"])]
    assert parsed.text == "" and parsed.malformed == []
    bad = parse_response('Sure.<tool_call>\n{"name": "x", "arguments": {oops}\n</tool_call><|im_end|>garbage', stop=END_OF_TURN)
    assert bad.text == "Sure." and bad.calls == [] and len(bad.malformed) == 1
    assert (
        json.loads(json.dumps(parsed.to_message(["c1"])))["tool_calls"][0]["function"]["name"] == msg["tool_calls"][0]["function"]["name"]
    )


def test_tokenizer_round_trips_through_save(tiny, tmp_path):
    model, tok, traj = tiny
    tok.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    msgs = template_messages(traj.messages)
    assert again.apply_chat_template(msgs, tokenize=False) == tok.apply_chat_template(msgs, tokenize=False)
    ids = tok(msgs[1]["content"])["input_ids"]
    assert tok.decode(ids) == msgs[1]["content"]  # byte-level: lossless
    assert model.config.vocab_size >= len(tok) and sum(p.numel() for p in model.parameters()) < 2_000_000


def test_training_template_for_a_real_model(tiny, tmp_path):
    _, tok, _ = tiny
    assert training_chat_template(tok) == CHAT_TEMPLATE  # already marked
    plain = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    tok.save_pretrained(tmp_path)
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    tok2.chat_template = plain
    with pytest.raises(ValueError, match="train.chat_template"):
        training_chat_template(tok2)
    path = tmp_path / "train.jinja"
    path.write_text(CHAT_TEMPLATE)
    assert training_chat_template(tok2, str(path)) == CHAT_TEMPLATE
    path.write_text(plain)
    with pytest.raises(ValueError, match="no \\{% generation %\\} markers"):
        training_chat_template(tok2, str(path))
