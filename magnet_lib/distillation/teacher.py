"""Positive trajectories by context distillation (paper section 3.5, positive part).

The teacher sees the BFCL-style system prompt, its instructions and, after every user query,
a ``[Hint]`` with the turn's calls (``fc_h``), or ``[Hint]: miss function`` /
``[Hint]: missed params`` on a split turn. It writes the assistant side of the conversation
one message at a time:

- a call turn: one assistant message per *round* of the hint (independent calls together,
  a nested call in its own message after the output it needs), each followed by the real
  tool messages, then a text that summarises the outputs and never mentions a hint;
- ``miss_func``: a text that says in words what functionality is missing;
- ``miss_params``: a text that asks for the missing value.

Every call the teacher makes is checked (offered, valid against its schema) and really
executed in a fresh runtime with the episode's seed; the outputs are the tool messages. When
a function becomes available mid-conversation (after ``miss_func``), the user message of that
turn introduces it (:func:`magnet_lib.training.chat_format.with_tools_added`) and the trajectory
records it in ``tool_updates``.

Offline, the teacher repeats the hint's calls verbatim and summarises the outputs from a
template.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.llm.driver import run_interleaved
from magnet_lib.llm.runner import TaskResult, TaskRunner
from magnet_lib.llm.task import ParseError, Task
from magnet_lib.models import (
    OFFLINE,
    Call,
    Episode,
    EpisodeTurn,
    Tool,
    Trajectory,
    TurnLabel,
    stable_hash,
)
from magnet_lib.pool.envs import is_error
from magnet_lib.pool.execution import EpisodeRuntime, make_runtime
from magnet_lib.pool.function_pool import validate_arguments
from magnet_lib.tool_calls import message_calls, parse_calls
from magnet_lib.training import chat_format as cf
from magnet_lib.training.chat_format import system_prompt
from magnet_lib.translation.back_translation import PREPOSITIONS, render_value, sentence, words
from magnet_lib.vocabulary import VERBS, name_tokens, singular, singular_name

Request = tuple[Task, BaseModel]


# --------------------------------------------------------------------------- the teacher task's data


class TeacherStepInput(BaseModel):
    """One assistant message of a positive trajectory, asked of the teacher."""

    tools: list[dict[str, Any]] = Field(description="OpenAI specs of the tools offered at this point.")
    transcript: list[dict[str, str]] = Field(description="The conversation so far as the teacher sees it (hints included).")
    expected: Literal["call", "text"]
    label: TurnLabel = "call"
    hint: str = ""
    step_calls: list[Call] = Field(default_factory=list, description="The calls of the hint to make in this message.")
    turn_outputs: list[dict[str, Any]] = Field(
        default_factory=list, description="This turn's calls: function, description, arguments, output."
    )
    target_description: str | None = None
    missing_param: str | None = None
    missing_description: str | None = None


class TeacherMessage(BaseModel):
    content: str = ""
    calls: list[Call] = Field(default_factory=list)


def hint_text(turn: EpisodeTurn) -> str:
    """The ``[Hint]`` of a turn: its calls as call strings, or the split label."""
    if turn.label == "miss_func":
        return "miss function"
    if turn.label == "miss_params":
        return "missed params"
    return "[" + ", ".join(c.to_python() for c in turn.calls) + "]"


_HINT_WORD = re.compile(r"\bhints?\b", re.IGNORECASE)


def _canonical(call: Call, schemas: dict[str, dict[str, Any]]) -> str:
    """A call with default-valued arguments dropped (extra defaults are acceptable)."""
    props = schemas.get(call.name, {}).get("properties", {})
    args = {k: v for k, v in call.arguments.items() if not ("default" in props.get(k, {}) and props[k]["default"] == v)}
    return json.dumps([call.name, args], sort_keys=True, ensure_ascii=False)


def parse_teacher(text: str, item: TeacherStepInput) -> TeacherMessage:
    """Read the teacher's message: ``Answer: [calls]`` for a call step (they must be the
    hint's calls of this step), plain text otherwise (never mentioning a hint)."""
    match = re.search(r"Answer\s*:\s*(.*)\Z", text, re.DOTALL | re.IGNORECASE)
    if item.expected == "call":
        body = match.group(1) if match else text
        calls = parse_calls(body)
        content = re.sub(r"^\s*Thought\s*:\s*", "", text[: match.start()] if match else "", flags=re.IGNORECASE).strip()
        schemas = {cf.function_specs([t])[0]["name"]: cf.function_specs([t])[0].get("parameters", {}) for t in item.tools}
        unknown = [c.name for c in calls if c.name not in schemas]
        if unknown:
            raise ParseError(f"{', '.join(unknown)} is not an offered function")
        if Counter(_canonical(c, schemas) for c in calls) != Counter(_canonical(c, schemas) for c in item.step_calls):
            wanted = ", ".join(c.to_python() for c in item.step_calls)
            raise ParseError(f"make exactly the hint's calls that are due now, and nothing else: [{wanted}]")
        if _HINT_WORD.search(content):
            raise ParseError("never mention the hint")
        return TeacherMessage(content=content, calls=list(item.step_calls))
    if match:
        try:
            if parse_calls(match.group(1)):
                raise ParseError("do not call a function now; reply to the user in plain text")
        except ParseError as exc:
            if "plain text" in str(exc):
                raise
    content = text.strip()
    if not content:
        raise ParseError("the reply is empty; write a message to the user")
    if _HINT_WORD.search(content):
        raise ParseError("never mention the hint; write as if you worked it out yourself")
    if item.label == "miss_params" and "?" not in content:
        raise ParseError("ask the user for the missing value (a question)")
    return TeacherMessage(content=content)


def teacher_answer_text(output: TeacherMessage) -> str:
    if output.calls:
        calls = json.dumps([{"name": c.name, "arguments": c.arguments} for c in output.calls], ensure_ascii=False)
        return (f"{output.content}\n" if output.content else "") + f"Answer: {calls}"
    return output.content


# --------------------------------------------------------------------------- offline teacher


def _plural(n: int, word: str) -> str:
    """'1 flight', '2 flights' (the word as the schema names the list, singular for one)."""
    return f"{n} {singular_name(word).replace('_', ' ') if n == 1 else word}"


def _fact(key: str, value: Any) -> str:
    if isinstance(value, list):
        if not value:
            return f"no {words(key)}"
        if isinstance(value[0], dict):
            return f"{_plural(len(value), words(key))} (the first: {_facts(value[0], 3)})"
        return f"{words(key)} {', '.join(render_value(v) for v in value[:5])}"
    if isinstance(value, dict):
        return f"{words(key)}: {_facts(value, 3)}"
    return f"{words(key)} {render_value(value)}"


def _facts(output: Any, limit: int = 5, first: Sequence[str] = ()) -> str:
    """Fields of an output as words: the ``first`` ones (what the user asked for) always,
    then the others up to ``limit``."""
    if not isinstance(output, dict):
        return render_value(output)
    keys = [k for k in first if k in output] + [k for k in output if k not in first]
    keys = keys[: max(limit, len([k for k in first if k in output]))]
    parts = [_fact(k, output[k]) for k in keys]
    return ", ".join(parts) if parts else "nothing to report"


_OPENERS = ["", "", "Done.", "All set.", "Here you go.", "OK.", "Sure.", "Here's what I got.", "That's done."]
#: one list for any number of outputs, so that a reply with a call less (a rejected one) is worded the same way
_FRAMES = ["{what}: {facts}.", "For the {what}: {facts}.", "{what} - {facts}.", "The {what}: {facts}."]
_NTH = ["first", "second", "third", "fourth", "fifth", "next"]


def _asked(query: str, output: Any) -> list[str]:
    """Output fields the user's request names ('price and status' -> price, status)."""
    asked_words = {singular(w) for w in re.findall(r"[a-z]+", query.lower())}
    if not isinstance(output, dict):
        return []
    out = []
    for key in output:
        toks = [singular(t) for t in name_tokens(key) if t not in ("id", "is")]
        if toks and all(t in asked_words for t in toks):
            out.append(key)
    return out


OUTPUTS_PREFIX = "[Output of "


def request_text(transcript: Sequence[dict[str, str]]) -> str:
    """The user's request of the current turn in the teacher's transcript: the last user
    message that is not the outputs of calls (those come back as user messages too), without
    its hint."""
    users = (str(m.get("content") or "") for m in reversed(transcript) if m.get("role") == "user")
    return next((u for u in users if not u.startswith(OUTPUTS_PREFIX)), "").split("\n[Hint]:")[0]


def offline_summary(item: TeacherStepInput) -> str:
    """An answer to what the user asked: the fields the request names first, then the main
    others; worded in several ways (seeded by the request, so a rejected reply made from the
    same request reads the same)."""
    query = request_text(item.transcript)
    rng = random.Random(f"summary:{stable_hash([query])}")
    opener = rng.choice(_OPENERS)  # drawn first: a reply to the same request opens the same way
    parts = []
    times = Counter(o["function"] for o in item.turn_outputs)
    seen: Counter = Counter()
    for o in item.turn_outputs:
        what = words(_verb_object(o["function"]))
        facts = _facts(o["output"], 5, _asked(query, o["output"]))
        seen[o["function"]] += 1
        if times[o["function"]] > 1:  # the same function called in parallel: one answer each, told apart
            nth = _NTH[min(seen[o["function"]], len(_NTH)) - 1]
            frame = f"For the {nth} {{what}}: {{facts}}." if seen[o["function"]] == 1 else f"The {nth}: {{facts}}."
        else:
            frame = rng.choice(_FRAMES)
        text = frame.format(what=what, facts=facts)
        parts.append(text[0].upper() + text[1:])
    return " ".join([opener, *parts]) if opener else " ".join(parts)


def _verb_object(function: str) -> str:
    """The object a function acts on: 'get_current_weather' -> 'current_weather',
    'create_social_post' -> 'social_post' (only the leading verb goes, and not before a
    preposition: a label names what the user asked about, never a bare word like 'social')."""
    rest = list(name_tokens(function))
    if len(rest) > 1 and rest[0] in VERBS and rest[1] not in PREPOSITIONS:  # 'transfer between accounts' keeps its verb
        rest = rest[1:]
    return "_".join(rest)


def offline_missing_function(description: str | None) -> str:
    what = sentence(description or "do that")
    return (
        f"I'm sorry, but none of the functions I can use does this ({what}). "
        "That functionality is missing; once it is available I can continue with your request."
    )


def offline_missing_value(param: str | None, description: str | None) -> str:
    name = words(param or "value")
    detail = f" ({sentence(description)})" if description else ""
    return f"I can do that, but I still need the {name}{detail}. Could you tell me the {name}?"


def offline_teacher(item: TeacherStepInput) -> TeacherMessage:
    if item.expected == "call":
        return TeacherMessage(calls=list(item.step_calls))
    if item.label == "miss_func":
        return TeacherMessage(content=offline_missing_function(item.target_description))
    if item.label == "miss_params":
        return TeacherMessage(content=offline_missing_value(item.missing_param, item.missing_description))
    return TeacherMessage(content=offline_summary(item))


# --------------------------------------------------------------------------- the distillation loop


@dataclass
class DistillResult:
    trajectory: Trajectory | None = None
    reject_reason: str | None = None
    episode_id: str | None = None


def calls_text(calls: Sequence[Call]) -> str:
    """The calls of one assistant message as the teacher's transcript shows them."""
    return "Answer: " + json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False)


def outputs_text(calls: Sequence[Call], outputs: Sequence[Any]) -> str:
    """The outputs of one message's calls as the teacher's transcript shows them (a user message)."""
    return "\n".join(f"{OUTPUTS_PREFIX}{c.name}]: {json.dumps(o, ensure_ascii=False, sort_keys=True)}" for c, o in zip(calls, outputs))


def rounds_of(turn: EpisodeTurn) -> list[list[int]]:
    """Indices of the turn's calls grouped by round (a nested call gets its own message)."""
    rounds = turn.rounds if len(turn.rounds) == len(turn.calls) else [0] * len(turn.calls)
    groups: dict[int, list[int]] = {}
    for index, r in enumerate(rounds):
        groups.setdefault(r, []).append(index)
    return [groups[r] for r in sorted(groups)]


class ConversationBuilder:
    """Messages of a trajectory plus the teacher's view of them, kept side by side; calls
    really execute in the episode's runtime."""

    def __init__(self, tools: dict[str, Tool], offered: Sequence[str], runtime: EpisodeRuntime):
        self.tools = tools
        self.runtime = runtime
        self.offered = list(offered)
        self.messages: list[dict[str, Any]] = [cf.system(self.specs(self.offered))]
        self.transcript: list[dict[str, str]] = []
        self.tool_updates: list[dict[str, Any]] = []

    def specs(self, names: Sequence[str]) -> list[dict[str, Any]]:
        return [self.tools[n].openai_spec() for n in names]

    def user_turn(self, query: str, offered: Sequence[str], hint: str | None) -> None:
        added = [n for n in offered if n not in self.offered]
        if added:
            self.tool_updates.append({"message_index": len(self.messages), "tools": self.specs(added)})
            self.offered.extend(added)
        content = cf.with_tools_added(query, self.specs(added))
        self.messages.append(cf.user(content))
        self.transcript.append({"role": "user", "content": content + (f"\n[Hint]: {hint}" if hint is not None else "")})

    def call_step(self, calls: Sequence[Call], turn: int, first_id: int, content: str = "") -> tuple[list[Any], str | None]:
        """Execute and record one assistant message of calls; the outputs, or why it failed."""
        for call in calls:
            if call.name not in self.offered:
                return [], f"{call.name} is not an offered tool"
            problems = validate_arguments(self.tools[call.name], call.arguments)
            if problems:
                return [], "; ".join(problems)
        ids = [cf.call_id(turn, first_id + k) for k in range(len(calls))]
        outputs = [self.runtime.execute(c) for c in calls]
        for call, output in zip(calls, outputs):
            if is_error(output):
                return [], f"{call.name} returned an error: {output['error'].get('code')}: {output['error'].get('message')}"
        self.messages.append(cf.assistant_calls(calls, ids, content))
        for call, identifier, output in zip(calls, ids, outputs):
            self.messages.append(cf.tool(call, identifier, output))
        self.transcript.append({"role": "assistant", "content": (f"{content}\n" if content else "") + calls_text(calls)})
        self.transcript.append({"role": "user", "content": outputs_text(calls, outputs)})
        return outputs, None

    def text(self, content: str) -> None:
        self.messages.append(cf.assistant_text(content))
        self.transcript.append({"role": "assistant", "content": content})


def distill_episode(
    episode: Episode, tools: dict[str, Tool], teacher: Task, runner: TaskRunner | None = None
) -> Generator[Request, TaskResult, DistillResult]:
    """The positive trajectory of one accepted episode (a generator for the driver); ``runner``
    simulates spec-only tools in LLM mode (its cache replays the outputs translation got)."""
    rejected = lambda reason: DistillResult(reject_reason=reason, episode_id=episode.episode_id)
    missing = sorted({n for n in episode.tools if n not in tools})
    if missing:
        return rejected(f"unknown function(s) {', '.join(missing)}")
    runtime = make_runtime([tools[n] for n in episode.tools], episode.seed, runner)
    first = episode.turns[0].offered if episode.turns and episode.turns[0].offered else episode.tools
    conv = ConversationBuilder(tools, first, runtime)
    generator = OFFLINE

    def ask(item: TeacherStepInput) -> Generator[Request, TaskResult, TaskResult]:
        nonlocal generator
        result = yield (teacher, item)
        if result.ok and result.generator != OFFLINE:
            generator = result.generator
        return result

    for turn in episode.turns:
        offered = turn.offered or episode.tools
        hint = hint_text(turn)
        conv.user_turn(turn.query, offered, hint)
        base = dict(tools=conv.specs(conv.offered), label=turn.label, hint=hint)
        if turn.label == "call":
            done: list[dict[str, Any]] = []
            for group in rounds_of(turn):
                step = [turn.calls[k] for k in group]
                result = yield from ask(
                    TeacherStepInput(transcript=list(conv.transcript), expected="call", step_calls=step, turn_outputs=list(done), **base)
                )
                if not result.ok:
                    return rejected(f"teacher_turn: {result.reject_reason}")
                outputs, failure = conv.call_step(result.value.calls, turn.index, group[0], result.value.content)
                if failure:
                    return rejected(f"turn {turn.index}: {failure}")
                done.extend(
                    {"function": c.name, "description": tools[c.name].description, "arguments": c.arguments, "output": o}
                    for c, o in zip(result.value.calls, outputs)
                )
            item = TeacherStepInput(transcript=list(conv.transcript), expected="text", turn_outputs=done, **base)
        elif turn.label == "miss_func":
            target = tools.get(turn.target or "")
            item = TeacherStepInput(
                transcript=list(conv.transcript), expected="text", target_description=target.description if target else None, **base
            )
        else:
            target = tools.get(turn.target or "")
            prop = target.properties.get(turn.missing or "", {}) if target else {}
            item = TeacherStepInput(
                transcript=list(conv.transcript), expected="text", missing_param=turn.missing,
                missing_description=prop.get("description"), target_description=target.description if target else None, **base,
            )  # fmt: skip
        result = yield from ask(item)
        if not result.ok:
            return rejected(f"teacher_turn: {result.reject_reason}")
        conv.text(result.value.content)
    functions = sorted({c.name for t in episode.turns for c in t.calls} | {t.target for t in episode.turns if t.target})
    trajectory = Trajectory(
        traj_id=f"tr-{stable_hash([episode.episode_id, 'multi_turn'])}",
        kind="multi_turn",
        category=episode.category,
        messages=conv.messages,
        tools=conv.specs(first),
        episode_id=episode.episode_id,
        fsp_id=episode.fsp_id,
        parent_fsp_id=episode.parent_fsp_id,
        functions=functions,
        tool_updates=conv.tool_updates,
        generator=generator,
    )
    return DistillResult(trajectory=trajectory, episode_id=episode.episode_id)


def default_teacher() -> Task:
    return TEACHER_TURN


def distill(
    episodes: Sequence[Episode], category_tools: Sequence[Tool], runner: TaskRunner, teacher: Task | None = None
) -> list[DistillResult]:
    """Positive trajectories of every accepted episode (rejected episodes are skipped)."""

    teacher = teacher or default_teacher()
    tools = {t.name: t for t in category_tools}
    accepted = [e for e in episodes if e.status == "ok"]
    return run_interleaved([distill_episode(e, tools, teacher, runner) for e in accepted], runner)


def call_problems(trajectory: Trajectory, tools: dict[str, Tool]) -> list[str]:
    """Every call that names a tool not offered at that point of the conversation (the
    ``tools`` list plus functions added before it), or whose arguments do not validate."""
    offered = {cf.function_specs([t])[0]["name"] for t in trajectory.tools}
    added = {u["message_index"]: [cf.function_specs([t])[0]["name"] for t in u["tools"]] for u in trajectory.tool_updates}
    problems = []
    for index, message in enumerate(trajectory.messages):
        offered.update(added.get(index, []))
        for call in message_calls(message):
            where = f"{trajectory.traj_id} message {index}"
            if call.name not in offered:
                problems.append(f"{where}: {call.name} is not offered")
            elif call.name not in tools:
                problems.append(f"{where}: {call.name} is not in the function pool")
            else:
                problems.extend(f"{where}: {p}" for p in validate_arguments(tools[call.name], call.arguments))
    return problems


# --------------------------------------------------------------------------- the LLM task


class TeacherTurnTask(Task[TeacherStepInput, TeacherMessage]):
    name = "teacher_turn"
    template = "teacher_turn.md"
    input_model = TeacherStepInput
    output_model = TeacherMessage

    def variables(self, item: TeacherStepInput) -> dict:
        return {**super().variables(item), "system_prompt": system_prompt(item.tools)}

    def parse(self, text: str, item: TeacherStepInput) -> TeacherMessage:
        return parse_teacher(text, item)

    def offline(self, item: TeacherStepInput) -> TeacherMessage:
        return offline_teacher(item)

    def answer_text(self, output: TeacherMessage) -> str:
        return teacher_answer_text(output)


TEACHER_TURN = TeacherTurnTask()
