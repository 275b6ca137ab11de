"""The conversation format of every training example: OpenAI chat messages plus ``tools``.

- ``system_prompt(tools)``: the BFCL-v3 style system prompt (paper, training details): an
  expert in composing functions that says when no function fits or a value is missing, then
  the function list in JSON. A stored example's system message (``system``) holds the
  instructions only and its ``tools`` the functions, which the chat template writes after the
  instructions (as the same JSON list), so training and evaluation see the same text and each
  spec once.
- message builders (``user``, ``assistant_calls``, ``tool``, ``assistant_text``) that give the
  shape TRL and ``datasets`` read directly: assistant ``tool_calls`` with ``function.name`` and
  ``function.arguments`` (a JSON string, as the OpenAI API sends it) and ``tool`` messages
  answering them by ``tool_call_id``.
- ``tools_added_note``: when a function becomes available in the middle of a conversation
  (the turn after a ``miss_func`` turn, as in BFCL's miss-func category), the user message of
  that turn starts with the new function's spec. A user message is the one role every chat
  template renders anywhere in a conversation, so the change survives any template.
- ``template_messages``: the adapter from these messages to what every model's chat
  template reads (the tiny model's and real ones'), used by SFT, mDPO and the student.

Calls are read back from messages with :mod:`magnet_lib.tool_calls`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from magnet_lib.models import Call, Message
from magnet_lib.tool_calls import arguments_or_raw, message_calls

SYSTEM_INSTRUCTIONS = """\
You are an expert at composing function calls. You receive a request from a user and a set \
of functions you may call. Work out which calls, in which order, fulfil the request, and make \
them. If none of the functions fits the request, say so and describe in words the \
functionality that is missing. If the request lacks a value that a function requires, say \
which value is missing and ask the user for it instead of guessing.
Make calls through the tool-calling interface; written out, calls look like \
[func_name(param_a=value_a, param_b=value_b), other_func(param=value)]. Calls that do not \
depend on each other may go in one message; when a call needs the output of another, make \
one call per message and wait for its output. Once the outputs are in, answer the user with \
a short summary of what they say. Keep working on the user's request within the current \
turn until it is done."""

FUNCTIONS_HEADER = "\n\nHere is the list of functions you can call, in JSON format:\n"
#: the whole prompt with its function list, for a reader that gets no ``tools`` (the teacher's
#: prompt, a served student without native tools)
SYSTEM_PROMPT = SYSTEM_INSTRUCTIONS + FUNCTIONS_HEADER + "{functions}"

TOOLS_ADDED_PREFIX = "I have made more functions available to you:"


def function_specs(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The inner ``function`` objects of OpenAI tool specs (the BFCL function-doc shape)."""
    return [t.get("function", t) for t in tools]


def system_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """BFCL-style system prompt listing ``tools`` (OpenAI function specs) in the given order."""
    return SYSTEM_PROMPT.format(functions=json.dumps(function_specs(tools), ensure_ascii=False, indent=2))


def without_function_json(content: str) -> str:
    """A system prompt made by :func:`system_prompt` without its function list, for formats
    whose chat template renders ``tools`` itself (the list would be there twice)."""
    head, sep, _ = content.partition(FUNCTIONS_HEADER)
    return head if sep else content


def system(tools: Sequence[dict[str, Any]] = ()) -> Message:
    """The system message of a stored example: the instructions only. The functions
    (``tools``, accepted so call sites read as what they build) travel in the example's
    ``tools``, and every reader writes them once from there: the chat template (ours and
    Hugging Face ones render ``tools``), a served student without native tools
    (:func:`with_function_json`), the exports. Writing them here too would give every spec
    twice."""
    return {"role": "system", "content": SYSTEM_INSTRUCTIONS}


def with_function_json(messages: Sequence[Message], tools: Sequence[dict[str, Any]]) -> list[Message]:
    """``messages`` whose system message lists ``tools`` as JSON (for a reader that gets no
    ``tools``), unless it already does."""
    out = [dict(m) for m in messages]
    if not tools:
        return out
    if out and out[0].get("role") == "system":
        if FUNCTIONS_HEADER not in str(out[0].get("content") or ""):
            out[0]["content"] = (
                str(out[0].get("content") or "") + FUNCTIONS_HEADER + json.dumps(function_specs(tools), ensure_ascii=False, indent=2)
            )
        return out
    return [{"role": "system", "content": system_prompt(tools)}, *out]


def user(content: str) -> Message:
    return {"role": "user", "content": content}


def assistant_text(content: str) -> Message:
    return {"role": "assistant", "content": content}


def call_id(turn: int, index: int) -> str:
    """Deterministic tool-call ids: the same trajectory always renders the same tokens."""
    return f"call_{turn}_{index}"


def assistant_calls(calls: Sequence[Call], ids: Sequence[str], content: str = "") -> Message:
    """An assistant message making ``calls`` (parallel when there are several)."""
    return {"role": "assistant", "content": content, "tool_calls": [c.to_openai(i) for c, i in zip(calls, ids)]}


def tool(call: Call, identifier: str, output: Any) -> Message:
    """The tool message answering one call: its real output as JSON."""
    return {
        "role": "tool",
        "tool_call_id": identifier,
        "name": call.name,
        "content": json.dumps(output, ensure_ascii=False, sort_keys=True),
    }


def tools_added_note(tools: Sequence[dict[str, Any]]) -> str:
    """The text that introduces functions made available mid-conversation."""
    return f"{TOOLS_ADDED_PREFIX}\n{json.dumps(function_specs(tools), ensure_ascii=False, indent=2)}\n\n"


def with_tools_added(query: str, tools: Sequence[dict[str, Any]]) -> str:
    return tools_added_note(tools) + query if tools else query


def iter_calls(messages: Iterable[Message]) -> Iterator[tuple[int, Call]]:
    """(message index, call) for every call in a conversation."""
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            for c in message_calls(m):
                yield i, c


def template_messages(messages: Sequence[Message]) -> list[Message]:
    """OpenAI chat messages made ready for any model's chat template (the tiny model's and
    real ones alike): tool-call arguments as objects (OpenAI stores them as JSON strings,
    templates write them with ``tojson``), no None content, only the keys templates read."""
    out: list[Message] = []
    for m in messages:
        msg: Message = {"role": m["role"], "content": m.get("content") or ""}
        if m.get("tool_calls"):
            msg["tool_calls"] = [
                {"type": "function", "function": {"name": fn["name"], "arguments": arguments_or_raw(fn.get("arguments"))}}
                for fn in (tc.get("function", tc) for tc in m["tool_calls"])
            ]
        if m["role"] == "tool":
            content = m.get("content")
            msg["content"] = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        out.append(msg)
    return out


def user_turns(messages: Sequence[Message]) -> int:
    return sum(1 for m in messages if m.get("role") == "user")


def render_markdown(messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None = None) -> str:
    """A conversation as readable markdown (for reports): one block per message, the system
    prompt shortened to the names of its functions."""
    lines = []
    for m in messages:
        role = m.get("role")
        if role == "system":
            names = ", ".join(f["name"] for f in function_specs(tools or []))
            lines.append(f"**system**: BFCL-style prompt with functions: {names}")
        elif role == "assistant" and m.get("tool_calls"):
            calls = "; ".join(c.to_python() for c in message_calls(m))
            lines.append(f"**assistant** (calls): `{calls}`")
        elif role == "tool":
            content = m.get("content", "")
            lines.append(f"**tool** `{m.get('name', '')}`: `{content[:400]}{'…' if len(content) > 400 else ''}`")
        else:
            content = str(m.get("content", ""))
            if content.startswith(TOOLS_ADDED_PREFIX):
                head, _, rest = content.partition("\n\n")
                added = [f["name"] for f in json.loads(head[len(TOOLS_ADDED_PREFIX) :])]
                content = f"[functions added: {', '.join(added)}] {rest}"
            lines.append(f"**{role}**: {content}")
    return "\n\n".join(lines)
