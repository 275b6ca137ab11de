"""Tool calls read back from where they are written, with one rule for their arguments.

- **arguments** (:func:`decode_arguments`): an object, or a JSON string of one (what the
  OpenAI API sends); missing or empty means no arguments. Anything else is a
  :class:`~magnet_lib.llm.task.ParseError`. :func:`arguments_or_raw` is the tolerant form for
  answers that may be wrong (a student's): what cannot be read is kept as ``{"_raw": ...}``.
- **a call object** (:func:`call_from_object`): ``{"name": ..., "arguments": {...}}``
  (``parameters`` accepted for ``arguments``), the shape of a ``<tool_call>`` block, of an
  entry of a JSON list of calls and of the ``function`` of an OpenAI tool call.
- **an assistant message** (:func:`message_calls`, :func:`identified_calls`): its OpenAI
  ``tool_calls``.
- **generated text** (:func:`parse_response`): ``<tool_call>`` blocks (the format of the
  project's tiny chat template and of the Qwen2.5 / Hermes templates) and the text around them.
- **a written answer** (:func:`parse_calls`): a JSON list of call objects, or Python call
  strings ``[f(a=1), g(b='x')]`` (the BFCL form).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from magnet_lib.llm.task import ParseError
from magnet_lib.models import Call, Message

TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


# --------------------------------------------------------------------------- arguments and one call


def decode_arguments(raw: Any, name: str = "the call") -> dict[str, Any]:
    """A call's arguments as a dict: ``raw`` is an object or a JSON string of one; None or
    empty is ``{}``. Raises :class:`ParseError` otherwise."""
    if not raw:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ParseError(f"arguments of {name} are not a JSON object") from None
    if not isinstance(raw, dict):
        raise ParseError(f"arguments of {name} must be an object")
    return dict(raw)


def arguments_or_raw(raw: Any) -> dict[str, Any]:
    """:func:`decode_arguments`, with what cannot be read kept as ``{"_raw": raw}``."""
    try:
        return decode_arguments(raw)
    except ParseError:
        return {"_raw": raw}


def call_from_object(entry: Any) -> Call:
    """A call from ``{"name": ..., "arguments": ...}`` (or ``"parameters"``). Raises
    :class:`ParseError` unless the name is a string and the arguments an object."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ParseError('each call must be an object {"name": ..., "arguments": {...}}')
    name = entry["name"]
    return Call(name=name, arguments=decode_arguments(entry.get("arguments", entry.get("parameters")), name))


# --------------------------------------------------------------------------- messages


def identified_calls(message: Message, *, tolerant: bool = False) -> list[tuple[str, Call]]:
    """(call id, call) for each of an assistant message's ``tool_calls``. ``tolerant``:
    arguments that cannot be read are kept as ``{"_raw": ...}`` instead of raising."""
    out = []
    for tc in message.get("tool_calls") or []:
        fn = tc.get("function", tc)
        raw = fn.get("arguments")
        arguments = arguments_or_raw(raw) if tolerant else decode_arguments(raw, fn["name"])
        out.append((tc.get("id", ""), Call(name=fn["name"], arguments=arguments)))
    return out


def message_calls(message: Message, *, tolerant: bool = False) -> list[Call]:
    """The calls an assistant message makes, arguments decoded."""
    return [call for _, call in identified_calls(message, tolerant=tolerant)]


# --------------------------------------------------------------------------- generated text


@dataclass
class ParsedResponse:
    """A generated assistant message: its text and the calls it makes."""

    text: str
    calls: list[Call]
    malformed: list[str]  # tool-call blocks that are not a JSON {"name", "arguments"} object

    def to_message(self, call_ids: Sequence[str]) -> Message:
        msg: Message = {"role": "assistant", "content": self.text or None}
        if self.calls:
            msg["tool_calls"] = [c.to_openai(i) for c, i in zip(self.calls, call_ids)]
        return msg


def parse_response(text: str, stop: Sequence[str] = ()) -> ParsedResponse:
    """Split a generated assistant message into text and ``<tool_call>`` blocks; the text
    ends at the first of the ``stop`` tokens (a template's end-of-turn tokens)."""
    calls: list[Call] = []
    malformed: list[str] = []
    for block in TOOL_CALL_BLOCK.findall(text):
        try:
            calls.append(call_from_object(json.loads(block)))
        except ValueError:  # json.JSONDecodeError and ParseError
            malformed.append(block[:200])
    cleaned = TOOL_CALL_BLOCK.sub("", text)
    for token in stop:
        cleaned = cleaned.split(token)[0]
    return ParsedResponse(text=cleaned.strip(), calls=calls, malformed=malformed)


# --------------------------------------------------------------------------- written answers


def python_calls(text: str) -> list[Call]:
    """``[f(a=1), g(b='x')]`` -> calls (keyword arguments, literal values only)."""
    tree = ast.parse(text.strip(), mode="eval").body
    nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    calls = []
    for node in nodes:
        if not isinstance(node, ast.Call) or node.args:
            raise ValueError("each call must be name(param=value, ...)")
        calls.append(Call(name=ast.unparse(node.func), arguments={kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}))
    return calls


def parse_calls(text: str) -> list[Call]:
    """Calls written as a JSON list of {"name", "arguments"} objects (or one such object) or
    as Python call strings. Raises :class:`ParseError` with what to write instead."""
    text = text.strip().strip("`").strip()
    if text.startswith("json"):
        text = text[4:].strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            return python_calls(text)
        except (SyntaxError, ValueError) as exc:
            raise ParseError(
                f'could not read the calls ({exc}); write them as a JSON list of {{"name": ..., "arguments": {{...}}}} objects'
            ) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ParseError("the answer must be a JSON list of calls")
    return [call_from_object(entry) for entry in data]
