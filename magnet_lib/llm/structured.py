"""Structured outputs: each task's answer schema sent as ``response_format`` where the model
server can enforce it, so the model writes JSON the parser accepts instead of being re-asked.

A task says what its answer looks like with :meth:`magnet_lib.llm.task.Task.response_schema`
(the JSON Schema of what ``parse`` reads, per item; None for free-text answers such as the
``Thought:``/``Answer:`` format or ``<tool_call>`` blocks). How it is sent is the setting
``llm.structured_outputs``:

- ``auto`` (default): ``json_schema`` when LiteLLM's capability table says the model supports
  response schemas (``litellm.supports_response_schema``: OpenAI, Azure, ...), else nothing.
  A model behind ``api_base`` (vLLM, llama.cpp) is unknown to that table: say which form it
  takes with one of the values below.
- ``json_schema``: OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema", "strict": false}}``
  (OpenAI, vLLM's guided decoding, SGLang).
- ``json_object``: ``{"type": "json_object", "schema": {...}}`` (llama.cpp / llama-cpp-python's
  server turn the schema into a grammar).
- ``off``: never sent.

Whatever is sent, the answer is still parsed and checked by the task, and re-asked with the
error shown when it does not parse (schemas cannot say everything a parser checks, e.g. that
a value is one of the item's candidates unless the schema lists them).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

import magnet_lib.llm.openai_path as openai_path

MODES = ("auto", "json_schema", "json_object", "off")


@lru_cache(maxsize=256)
def supports_schema(model: str) -> bool:
    """LiteLLM's capability lookup (False for a model it does not know). When LiteLLM is not
    loaded (the lean path never loads it), its model table is read directly: importing LiteLLM
    for one flag would cost the lean path 160 MiB and its start-up."""
    litellm = sys.modules.get("litellm")
    if litellm is not None:
        try:
            return bool(litellm.supports_response_schema(model=model))
        except Exception:  # an unknown provider or model
            return False
    entry = openai_path.model_entry(model)
    return bool(entry and entry.get("supports_response_schema"))


def mode_for(setting: str, model: str) -> str:
    """The form of ``response_format`` for ``model`` under the setting (``off`` = none)."""
    if setting not in MODES:
        raise ValueError(f"llm.structured_outputs must be one of {', '.join(MODES)}, got {setting!r}")
    if setting == "auto":
        return "json_schema" if supports_schema(model) else "off"
    return setting


def response_format(mode: str, name: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``response_format`` parameter of one request, or None."""
    if schema is None or mode == "off":
        return None
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name[:64], "schema": schema, "strict": False}}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    raise ValueError(f"unknown structured-output mode {mode!r}")
