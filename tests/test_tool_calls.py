"""The one tool-call decoder: messages, generated ``<tool_call>`` text and written answers
read calls with the same argument rule."""

from __future__ import annotations

import json

import pytest

from magnet_lib.llm.task import ParseError
from magnet_lib.models import Call
from magnet_lib.tool_calls import (
    decode_arguments,
    identified_calls,
    message_calls,
    parse_calls,
    parse_response,
)

CALL = Call(name="get_distance", arguments={"origin": "P1", "unit": "km"})


def test_arguments_are_an_object_or_its_json_and_nothing_else():
    assert decode_arguments({"a": 1}) == decode_arguments('{"a": 1}') == {"a": 1}
    assert decode_arguments(None) == decode_arguments("") == {}
    for bad, message in (("{oops", "not a JSON object"), ("[1]", "must be an object"), ([1], "must be an object")):
        with pytest.raises(ParseError, match=message):
            decode_arguments(bad, "f")


def test_a_call_reads_the_same_from_a_message_generated_text_and_a_written_answer():
    message = {"role": "assistant", "content": "", "tool_calls": [CALL.to_openai("c1")]}
    assert message_calls(message) == [CALL]
    assert identified_calls(message) == [("c1", CALL)]
    text = f"<tool_call>\n{json.dumps({'name': CALL.name, 'arguments': CALL.arguments})}\n</tool_call><|im_end|>"
    assert parse_response(text, stop=("<|im_end|>",)).calls == [CALL]
    assert parse_calls(json.dumps([{"name": CALL.name, "arguments": CALL.arguments}])) == [CALL]
    assert parse_calls(f"[{CALL.to_python()}]") == [CALL]
    assert parse_calls(json.dumps({"name": CALL.name, "parameters": json.dumps(CALL.arguments)})) == [CALL]


def test_unreadable_arguments_raise_or_are_kept_raw_when_tolerant():
    message = {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{oops"}}]}
    with pytest.raises(ParseError):
        message_calls(message)
    assert message_calls(message, tolerant=True) == [Call(name="f", arguments={"_raw": "{oops"})]
    parsed = parse_response('Sure.<tool_call>{"name": "f", "arguments": "[1]"}</tool_call>')
    assert parsed.calls == [] and len(parsed.malformed) == 1 and parsed.text == "Sure."
    with pytest.raises(ParseError, match="JSON list"):
        parse_calls("get_distance origin P1")
