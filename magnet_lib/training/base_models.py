"""The default base model: a tokenizer, a chat template and a small Qwen2-style model, all
built locally so that SFT and mDPO run on a laptop CPU with no download.

- **Tokenizer**: byte-level BPE trained with the ``tokenizers`` library on the synthesized
  conversations rendered with the chat template (or, with no corpus, on the built-in tools'
  specs and a short text sample), with ChatML control tokens.
- **Chat template** (:data:`CHAT_TEMPLATE`): ChatML; the system message as given (the
  project's BFCL-style system prompt already lists the functions in JSON, so a ``<tools>``
  block is rendered from ``tools`` only for a conversation without one); assistant tool calls as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` and tool
  outputs as ``<tool_response>`` blocks in a ``tool`` turn, the format of the Qwen2.5 instruct
  models. Every assistant message is wrapped in ``{% generation %}...{% endgeneration %}``
  (its end-of-turn token included), which is what TRL's assistant-only loss and our mDPO
  masking read.
- **Model**: ``Qwen2ForCausalLM`` initialised from a :class:`TinySpec` config.

A real base model (hub id or local path, or ``smollm2-135m``: SmolLM2-135M-Instruct from a
package, see :mod:`magnet_lib.training.pretrained`) is the setting ``train.base_model``; see
:func:`load_base_model` for how its training template is chosen. Messages reach every
model's template through :func:`magnet_lib.training.chat_format.template_messages`; generated
``<tool_call>`` blocks are read back by :func:`magnet_lib.tool_calls.parse_response`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from magnet_lib.pool.envs import builtin_environments
from magnet_lib.training.chat_format import template_messages
from magnet_lib.training.pretrained import resolve_base_model
from magnet_lib.training.templates import CHAT_TEMPLATE, END_OF_TEXT, END_OF_TURN, IM_END, IM_START, TAG_TOKENS  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class TinySpec:
    """Size of the tiny default model (a few hundred thousand parameters)."""

    vocab_size: int = 4096
    hidden_size: int = 64
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 8192


# --------------------------------------------------------------------------- tokenizer

_SAMPLE_TEXT = """\
Find a museum in Oakland, then tell me how far it is from the San Jose library in kilometres.
The Oakland Museum is 34.2 miles from the San Jose Library, which is 55.04 km.
I could not find a function that books a table; please give me the restaurant's phone number.
Which account should the 120.50 USD be paid from? I need the account id to make the transfer.
Your order FD-482913 is on its way and should arrive in 25 minutes.
"""


def builtin_corpus() -> list[str]:
    """Text for the tokenizer when no synthesized data is given: the built-in tools' specs
    (the JSON a model reads in every system prompt) and a short sample of dialogue."""

    texts = [_SAMPLE_TEXT]
    for env in builtin_environments().values():
        texts.extend(json.dumps(t.openai_spec(), ensure_ascii=False) for t in env.tools())
    return texts


def conversation_texts(conversations: Iterable[dict[str, Any]]) -> list[str]:
    """Conversations (``messages`` + ``tools``) rendered with :data:`CHAT_TEMPLATE`."""
    import jinja2

    env = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    # `{% generation %}` is a transformers extension; for plain rendering it is a no-op
    template = env.from_string(CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", ""))
    out = []
    for conv in conversations:
        tools = conv.get("tools") or []
        tools = json.loads(tools) if isinstance(tools, str) else tools
        out.append(template.render(messages=template_messages(conv["messages"]), tools=tools))
    return out


def train_tokenizer(texts: Sequence[str], vocab_size: int = 4096):
    """A byte-level BPE tokenizer trained on ``texts``, with ChatML control tokens and the
    template's tags as whole tokens, wrapped as a transformers fast tokenizer with
    :data:`CHAT_TEMPLATE` set."""
    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    specials = [END_OF_TEXT, IM_START, IM_END]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    core.train_from_iterator(list(texts), trainer=trainer)
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=None,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        unk_token=None,
        model_max_length=TinySpec.max_position_embeddings,
        padding_side="right",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# --------------------------------------------------------------------------- model


def tiny_model(tokenizer, spec: TinySpec = TinySpec(), seed: int = 0):
    """A randomly initialised Qwen2 causal LM sized by ``spec`` for ``tokenizer``'s vocabulary."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    vocab = len(tokenizer)
    vocab += (-vocab) % 64  # round up: friendlier matmul shapes
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(IM_START),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
    )
    return model


def build_tiny(corpus: Iterable[dict[str, Any]] | None = None, spec: TinySpec = TinySpec(), seed: int = 0):
    """(model, tokenizer) of the tiny default, the tokenizer trained on ``corpus``
    (conversations with ``messages`` and ``tools``) and :func:`builtin_corpus`."""
    texts = (conversation_texts(corpus) if corpus is not None else []) + builtin_corpus()
    tokenizer = train_tokenizer(texts, vocab_size=spec.vocab_size)
    return tiny_model(tokenizer, spec, seed=seed), tokenizer


def training_chat_template(tokenizer, template_path: str | None = None) -> str:
    """The chat template used for training a real base model: the file ``template_path``
    when given; else the tokenizer's own when it marks assistant messages with
    ``{% generation %}``; else TRL's training variant for known families (Qwen2.5, Qwen3,
    Llama 3, ...). Raises with what to do when none applies."""
    from trl.chat_template_utils import (
        get_training_chat_template,
        has_generation_markers,
    )

    if template_path:
        text = Path(template_path).expanduser().read_text(encoding="utf-8")
        if not has_generation_markers(text):
            raise ValueError(
                f"train.chat_template {template_path}: the template has no {{% generation %}} markers around assistant messages"
            )
        return text
    current = tokenizer.chat_template
    if current and has_generation_markers(current):
        return current if isinstance(current, str) else current["default"]
    if not current:
        return CHAT_TEMPLATE
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:  # TRL knows no training variant of this family
        patched = None
    if patched is None:
        raise ValueError(
            "the base model's chat template has no {% generation %} markers and TRL knows no training variant of it; "
            "write one (wrap each assistant message, its end-of-turn token included, in {% generation %}...{% endgeneration %}) "
            "and set train.chat_template to its path (see docs/training.md)"
        )
    return patched


def load_base_model(base_model: str, chat_template: str | None = None):
    """(model, tokenizer) of a real base model (hub id or local path) with its training template set."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    tokenizer.chat_template = training_chat_template(tokenizer, chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype="auto")
    return model, tokenizer


def build_base_model(settings, corpus: Iterable[dict[str, Any]] | None = None, spec: TinySpec = TinySpec()):
    """The base model of the run, saved to ``<checkpoints>/base``: the tiny default built on
    ``corpus`` when ``train.base_model == 'tiny'``, else the configured model."""
    out = Path(settings.checkpoints_dir) / "base"
    if settings.train.base_model == "tiny":
        model, tokenizer = build_tiny(corpus, spec, seed=settings.seed)
        meta = {"base_model": "tiny", "spec": asdict(spec), "vocab": len(tokenizer)}
    else:
        source = resolve_base_model(settings)  # a packaged model ('smollm2-135m'): its cached folder
        model, tokenizer = load_base_model(source, settings.train.chat_template)
        meta = {"base_model": settings.train.base_model, "source": source}
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "magnet_base.json").write_text(json.dumps(meta, indent=2))
    return model, tokenizer
