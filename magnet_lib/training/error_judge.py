"""The error judge of context distillation's negative part (paper section 3.5).

Every turn of a student trajectory is compared with the same turn of the reference (positive)
trajectory: correct, or wrong with one of five error types (``ERROR_TYPES``):

1. **nested call missing**: a call of the reference that needs the output of an earlier call
   of the same turn is not made;
2. **short dependency**: the call is made, but a value that had to come from an earlier
   call's output in the same turn is wrong;
3. **long dependency**: a value from an earlier turn (an output or what the user said) is not
   used: wrong, or asked for again;
4. **wrong summarisation**: the calls are right, but the reply invents a fact that no output
   gave or leaves out one the reference reports;
5. **missed function or parameters**: the reply calls where it should ask (a split turn) or
   asks (or says a function is missing) where it could call; a value the user gave in this
   turn is wrong.

If only one of reference and response is a call, the turn is wrong. Extra parameters are
acceptable when they carry the function's default value. A wrong response that none of the
types describes is wrong with no type and becomes no negative hint: a tool-call block that is
not JSON, a function that is not offered, an empty or garbled reply, a reply cut by the token
budget, or words where a call (or a question) was due that neither ask nor say what is
missing.

This module holds the offline rules (:func:`judge_turn`) and the conversation helpers the
student and the hints share (turn splitting, calls and outputs of a turn, where a value came
from). The LLM version is the task ``judge_errors`` (:mod:`magnet_lib.training.error_judge`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.llm.task import ParseError, Task, extract_json
from magnet_lib.models import Call, Message
from magnet_lib.tool_calls import identified_calls, message_calls
from magnet_lib.vocabulary import leaves

# --------------------------------------------------------------------------- conversation structure


@dataclass
class ChatTurn:
    """One user turn of a conversation: the user message and the messages answering it."""

    index: int
    user: Message
    responses: list[Message] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        return [self.user, *self.responses]


def split_turns(messages: Sequence[Message]) -> tuple[list[Message], list[ChatTurn]]:
    """(messages before the first user message, the user turns)."""
    head: list[Message] = []
    turns: list[ChatTurn] = []
    for m in messages:
        if m.get("role") == "user":
            turns.append(ChatTurn(index=len(turns), user=m))
        elif turns:
            turns[-1].responses.append(m)
        else:
            head.append(m)
    return head, turns


def decode_output(content: Any) -> Any:
    if isinstance(content, str):
        try:
            return json.loads(content)
        except json.JSONDecodeError:
            return content
    return content


@dataclass
class CallRecord:
    """A call made in a turn, its output and the response round it was made in."""

    call: Call
    output: Any
    round: int


def turn_calls(responses: Sequence[Message]) -> list[CallRecord]:
    """The calls of a turn in order, each with its output (matched by tool_call_id, else by
    position) and the index of the assistant message (round) that made it."""
    records: list[CallRecord] = []
    by_id: dict[str, CallRecord] = {}
    pending: list[CallRecord] = []
    rnd = -1
    for m in responses:
        if m.get("role") == "assistant":
            calls = identified_calls(m, tolerant=True)
            if calls:
                rnd += 1
            for cid, call in calls:
                rec = CallRecord(call=call, output=None, round=rnd)
                records.append(rec)
                pending.append(rec)
                if cid:
                    by_id[cid] = rec
        elif m.get("role") == "tool":
            rec = by_id.get(m.get("tool_call_id") or "")
            if rec is None and pending:
                rec = pending[0]
            if rec is not None:
                rec.output = decode_output(m.get("content"))
                if rec in pending:
                    pending.remove(rec)
    return records


def final_text(responses: Sequence[Message]) -> str | None:
    """The text of the last assistant message of a turn when it makes no call."""
    for m in reversed(responses):
        if m.get("role") == "assistant":
            return None if m.get("tool_calls") else (m.get("content") or "")
    return None


# --------------------------------------------------------------------------- values


def same_value(a: Any, b: Any) -> bool:
    """Argument equality as a judge reads it: numbers by value, strings ignoring case and
    surrounding space, containers element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, str) and isinstance(b, (int, float)) or isinstance(b, str) and isinstance(a, (int, float)):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
        except ValueError:
            return False
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def found_in(value: Any, outputs: Sequence[Any]) -> bool:
    """Whether a scalar argument value appears among the leaves of some outputs."""
    if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
        return False
    return any(same_value(value, leaf) for out in outputs for _, leaf in leaves(out))


def said_in(value: Any, texts: Sequence[str]) -> bool:
    """Whether a scalar value is written in some texts (user messages)."""
    if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
        return False
    needle = number_text(value) if isinstance(value, (int, float)) else str(value).strip().casefold()
    if not needle:
        return False
    for text in texts:
        if isinstance(value, (int, float)):
            if needle in {number_text(n) for n in NUMBER_PATTERN.findall(text)}:
                return True
        elif needle in text.casefold():
            return True
    return False


Provenance = Literal["same_turn_output", "earlier_output", "earlier_user", "query", "unknown"]


def provenance(
    value: Any, same_turn_outputs: Sequence[Any], earlier_outputs: Sequence[Any], earlier_user: Sequence[str], query: str
) -> Provenance:
    """Where the reference got an argument value from: an output of an earlier call of the
    same turn, an earlier turn (an output or what the user said), this turn's query."""
    if found_in(value, same_turn_outputs):
        return "same_turn_output"
    if said_in(value, [query]):
        return "query"
    if found_in(value, earlier_outputs):
        return "earlier_output"
    if said_in(value, earlier_user):
        return "earlier_user"
    return "unknown"


NUMBER_PATTERN = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
IDENT_PATTERN = re.compile(r"\b[A-Z]{2,}-\d{3,}\b")


def number_text(value: Any) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else repr(round(f, 6))


def facts(text: str) -> set[str]:
    """The checkable facts of a reply: identifiers (``PL-123456``) and numbers (single
    digits left out: they are ordinals and counts in prose as often as facts)."""
    out = set(IDENT_PATTERN.findall(text or ""))
    for n in NUMBER_PATTERN.findall(IDENT_PATTERN.sub(" ", text or "")):
        if len(n.lstrip("-").replace(".", "")) > 1 or "." in n:
            out.add(number_text(n))
    return out


def _list_sizes(value: Any) -> Iterator[int]:
    """Lengths of the lists inside a JSON value (a reply may report "13 slots")."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _list_sizes(v)
    elif isinstance(value, list):
        yield len(value)
        for v in value:
            yield from _list_sizes(v)


def output_facts(outputs: Sequence[Any]) -> set[str]:
    out: set[str] = set()
    for o in outputs:
        out |= {number_text(n) for n in _list_sizes(o)}
        for _, leaf in leaves(o):
            if isinstance(leaf, bool):
                continue
            if isinstance(leaf, (int, float)):
                out.add(number_text(leaf))
            elif isinstance(leaf, str):
                out |= facts(leaf) | ({leaf} if IDENT_PATTERN.fullmatch(leaf) else set())
    return out


# --------------------------------------------------------------------------- the verdict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JudgeItem(_Model):
    """One turn to judge: the reference's answer and the response, in the same context."""

    episode_id: str = ""
    turn_index: int = 0
    label: Literal["call", "miss_func", "miss_params"] = "call"
    tools: list[dict[str, Any]] = Field(default_factory=list, description="OpenAI specs of the offered functions.")
    history: list[Message] = Field(default_factory=list, description="The reference conversation before this turn (no system message).")
    query: str = Field(description="The user message of the turn.")
    reference: list[Message] = Field(description="The reference's messages answering the query (assistant + tool).")
    response: list[Message] = Field(description="The student's messages answering the query (assistant + tool).")
    truncated: bool = Field(False, description="The response was cut by the token budget.")
    malformed: list[str] = Field(default_factory=list, description="Tool-call blocks of the response that did not parse.")


class JudgeVerdict(_Model):
    """Correct, or wrong with an error type (1-5); wrong with no type = not usable as a hint."""

    correct: bool
    error_type: Literal[1, 2, 3, 4, 5] | None = None
    reason: str = ""


def _wrong(error_type: int | None, reason: str) -> JudgeVerdict:
    return JudgeVerdict(correct=False, error_type=error_type, reason=reason)


_ASKS = re.compile(
    r"\?|\b(which|what|please (provide|tell|give|share)|could you|can you (tell|give|share)|need (the|your|to know))\b", re.IGNORECASE
)
_MISSING = re.compile(
    r"\b(cannot|can't|can not|unable|no (function|tool)|not (available|offered|able|possible)|missing|don't have|do not have|isn't a|there is no)\b",
    re.IGNORECASE,
)


def asks(text: str | None) -> bool:
    """Whether a reply asks the user for something: a question of a few words."""
    if not text or len(text.split()) < 3:
        return False
    return "?" in text and bool(_ASKS.search(text))


def says_missing(text: str | None) -> bool:
    """Whether a reply says that what is asked cannot be done with the functions offered."""
    return bool(text) and len((text or "").split()) >= 3 and bool(_MISSING.search(text or ""))


_MARKUP = re.compile(r"<\|[a-z_]+\|>|</?tool_(call|response)>|</?tools>")


def garbled(text: str | None) -> bool:
    """Text no reader would take for a reply: undecodable bytes, control characters, chat
    markup left in it."""
    if not text:
        return False
    return "\ufffd" in text or any(ord(c) < 32 and c not in "\n\t\r" for c in text) or bool(_MARKUP.search(text))


def _defaults(tools: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for spec in tools:
        fn = spec.get("function", spec)
        props = (fn.get("parameters") or {}).get("properties") or {}
        out[fn.get("name", "")] = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
    return out


def _arg_problems(ref: Call, got: Call, defaults: dict[str, Any]) -> list[str]:
    """Parameters whose value differs (missing counts); extra parameters are fine when they
    carry the default value."""
    bad = [k for k, v in ref.arguments.items() if k not in got.arguments or not same_value(v, got.arguments[k])]
    for k, v in got.arguments.items():
        if k not in ref.arguments and not (k in defaults and same_value(defaults[k], v)):
            bad.append(k)
    return bad


def _user_texts(history: Sequence[Message]) -> list[str]:
    return [m.get("content") or "" for m in history if m.get("role") == "user"]


def _history_outputs(history: Sequence[Message]) -> list[Any]:
    return [decode_output(m.get("content")) for m in history if m.get("role") == "tool"]


def judge_summary(item: JudgeItem, ref_records: Sequence[CallRecord], resp_records: Sequence[CallRecord]) -> JudgeVerdict:
    """Type 4 check of the reply that closes a turn with calls: invented or omitted facts."""
    text = final_text(item.response)
    if text is None or not text.strip():
        return _wrong(4, "the turn ends without a reply that reports the outputs")
    grounded = output_facts([r.output for r in resp_records]) | output_facts(_history_outputs(item.history))
    for t in [item.query, *_user_texts(item.history)]:
        grounded |= facts(t)
    invented = sorted(facts(text) - grounded)
    ref_text = final_text(item.reference) or ""
    reported = facts(ref_text) & output_facts([r.output for r in ref_records])
    available = output_facts([r.output for r in resp_records])
    omitted = sorted(f for f in reported if f in available and f not in facts(text))
    if invented:
        return _wrong(4, f"the reply states {', '.join(invented[:3])}, which no output or user message gave")
    if omitted:
        return _wrong(4, f"the reply leaves out {', '.join(omitted[:3])} from the outputs")
    return JudgeVerdict(correct=True, reason="calls and reply match the reference")


def judge_turn(item: JudgeItem) -> JudgeVerdict:
    """The offline judge: the rules in the module docstring, applied in order."""
    ref_records = turn_calls(item.reference)
    resp_records = turn_calls(item.response)
    resp_text = final_text(item.response)
    problem = _form_problem(item, resp_records, resp_text)
    if problem is not None:
        return problem
    if not ref_records:
        return _judge_words_turn(item, resp_records, resp_text)
    if not resp_records:
        return _judge_missing_calls(item, ref_records, resp_text)
    return _judge_calls(item, ref_records, resp_records)


def _form_problem(item: JudgeItem, resp_records: list[CallRecord], resp_text: str | None) -> JudgeVerdict | None:
    """A response wrong whatever the turn asks: malformed, cut, calling what is not offered,
    empty or garbled."""
    offered = {s.get("function", s).get("name") for s in item.tools}
    if item.malformed:
        return _wrong(None, f"a tool call is not a JSON object with name and arguments: {item.malformed[0][:80]!r}")
    if item.truncated:
        return _wrong(None, "the response was cut by the token budget")
    unknown = sorted({r.call.name for r in resp_records} - offered) if offered else []
    if unknown:
        return _wrong(None, f"calls {', '.join(unknown)}, which is not offered")
    if not resp_records and not (resp_text or "").strip():
        return _wrong(None, "empty response")
    if garbled(resp_text):
        return _wrong(None, "the reply is garbled")
    return None


def _judge_words_turn(item: JudgeItem, resp_records: list[CallRecord], resp_text: str | None) -> JudgeVerdict:
    """A turn the reference answers in words (split turns and pure text turns)."""
    if resp_records:
        names = ", ".join(r.call.name for r in resp_records)
        if item.label == "miss_params":
            return _wrong(5, f"calls {names} although a required value is missing; it should ask for it")
        if item.label == "miss_func":
            return _wrong(5, f"calls {names} although no offered function does what is asked; it should say so")
        return _wrong(5, f"calls {names} where the reference answers in words")
    if item.label == "miss_params" and not asks(resp_text):
        return _wrong(None, "does not ask for the missing value (and makes no call)")
    if item.label == "miss_func" and not (says_missing(resp_text) or asks(resp_text)):
        return _wrong(None, "does not say that the needed function is missing (and makes no call)")
    if item.label == "call":
        return judge_summary(item, [], resp_records)
    return JudgeVerdict(correct=True, reason="answers in words as the reference does")


def _judge_missing_calls(item: JudgeItem, ref_records: list[CallRecord], resp_text: str | None) -> JudgeVerdict:
    """The reference calls and the response makes no call."""
    first = ref_records[0].call.name
    if asks(resp_text):
        earlier_outputs, earlier_user = _history_outputs(item.history), _user_texts(item.history)
        for rec in ref_records:
            for k, v in rec.call.arguments.items():
                if provenance(v, [], earlier_outputs, earlier_user, item.query) in ("earlier_output", "earlier_user"):
                    return _wrong(3, f"asks again for {k}, which an earlier turn gave ({v!r})")
        return _wrong(5, f"asks the user where it could call {first}")
    if says_missing(resp_text):
        return _wrong(5, f"says it cannot help where it could call {first}")
    return _wrong(None, f"answers in words, without asking, where it should call {first}")


def _judge_calls(item: JudgeItem, ref_records: list[CallRecord], resp_records: list[CallRecord]) -> JudgeVerdict:
    """Both call: each reference call matched by name to its closest response call, the
    first wrong argument classified by where its value had to come from."""
    defaults = _defaults(item.tools)
    earlier_outputs, earlier_user = _history_outputs(item.history), _user_texts(item.history)
    unmatched = list(resp_records)
    for i, rec in enumerate(ref_records):
        same_turn_outputs = [r.output for r in ref_records[:i] if r.round < rec.round]
        candidates = [r for r in unmatched if r.call.name == rec.call.name]
        if not candidates:
            if same_turn_outputs and any(found_in(v, same_turn_outputs) for v in rec.call.arguments.values()):
                return _wrong(1, f"the nested call {rec.call.name} on the output of {ref_records[0].call.name} is not made")
            return _wrong(5, f"does not call {rec.call.name}")
        expected_defaults = defaults.get(rec.call.name, {})
        best = min(candidates, key=lambda r: len(_arg_problems(rec.call, r.call, expected_defaults)))
        unmatched.remove(best)
        problems = _arg_problems(rec.call, best.call, expected_defaults)
        if problems:
            sources = (same_turn_outputs, earlier_outputs, earlier_user, item.query)
            return _argument_verdict(rec.call, best.call, problems, sources)
    if unmatched:
        return _wrong(5, f"makes calls the turn does not need: {', '.join(r.call.name for r in unmatched)}")
    return judge_summary(item, ref_records, resp_records)


def _argument_verdict(expected: Call, got_call: Call, problems: list[str], sources: tuple) -> JudgeVerdict:
    """The verdict on a call with wrong arguments: a value that had to come from this turn's
    outputs (2) or an earlier turn (3) first, else the first wrong parameter (5)."""
    for k in problems:
        if k not in expected.arguments:
            continue
        source = provenance(expected.arguments[k], *sources)
        got = got_call.arguments.get(k, "<missing>")
        if source == "same_turn_output":
            return _wrong(
                2,
                f"{expected.name}({k}={got!r}): the value had to come from the output of an earlier call of this turn ({expected.arguments[k]!r})",
            )
        if source in ("earlier_output", "earlier_user"):
            return _wrong(3, f"{expected.name}({k}={got!r}): the value from an earlier turn ({expected.arguments[k]!r}) is not used")
    k = problems[0]
    return _wrong(
        5,
        f"{expected.name}: parameter {k} is {got_call.arguments.get(k, '<missing>')!r}, expected {expected.arguments.get(k, '<absent>')!r}",
    )


# --------------------------------------------------------------------------- the LLM task: judge_errors
def transcript(messages: Sequence[Message], limit: int = 600) -> str:
    """Messages as judge-readable lines: calls as call strings, outputs shortened."""
    lines = []
    for m in messages:
        role = m.get("role")
        if role == "assistant":
            calls = message_calls(m, tolerant=True)
            if m.get("content"):
                lines.append(f"Assistant: {m['content']}")
            if calls:
                lines.append("Assistant calls: " + "; ".join(c.to_python() for c in calls))
        elif role == "tool":
            content = str(m.get("content", ""))
            lines.append(f"Output: {content[:limit]}{' ...' if len(content) > limit else ''}")
        elif role == "user":
            lines.append(f"User: {m.get('content', '')}")
    return "\n".join(lines) or "(nothing)"


class JudgeErrorsTask(Task[JudgeItem, JudgeVerdict]):
    name = "judge_errors"
    template = "judge_errors.md"
    input_model = JudgeItem
    output_model = JudgeVerdict
    temperature = 0.0

    def variables(self, item: JudgeItem) -> dict[str, Any]:
        functions = [
            {"name": f.get("name"), "parameters": list((f.get("parameters") or {}).get("properties", {}))}
            for f in (s.get("function", s) for s in item.tools)
        ]
        response = transcript(item.response)
        if item.malformed:
            response += "\n(unparsable tool call: " + item.malformed[0][:200] + ")"
        if item.truncated:
            response += "\n(the response was cut off)"
        return {
            "functions": json.dumps(functions, ensure_ascii=False),
            "history": transcript(item.history),
            "query": item.query,
            "label": item.label,
            "reference": transcript(item.reference),
            "response": response,
        }

    def parse(self, text: str, item: JudgeItem) -> JudgeVerdict:
        data = extract_json(text)
        if not isinstance(data, dict):
            raise ParseError('answer with one JSON object {"correct": ..., "error_type": ..., "reason": ...}')
        if isinstance(data.get("error_type"), str) and data["error_type"].strip().isdigit():
            data["error_type"] = int(data["error_type"])
        verdict = self.validate_output(data)
        if verdict.correct and verdict.error_type is not None:
            raise ParseError("a correct turn has error_type null")
        return verdict

    def offline(self, item: JudgeItem) -> JudgeVerdict:
        return judge_turn(item)
