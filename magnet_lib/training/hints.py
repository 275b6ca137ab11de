"""Negative hints and negative trajectories (paper section 3.5, negative part), and the mDPO
pairs made from them.

1. **Student errors.** The SFT model (the student) samples ``distill.student_samples``
   trajectories per episode (:mod:`magnet_lib.training.student`); the judge
   (:mod:`magnet_lib.training.error_judge`, task ``judge_errors``) compares each turn with the reference
   until the first wrong one. A wrong turn with an error type becomes a
   :class:`NegativeHint` (``source='student'``): the student's calls (``wrong_calls``) or its
   reply (``wrong_text``) at that turn, the type and the judge's reason.
2. **Injected errors.** When the student's usable errors for an episode are fewer than
   ``train.min_student_errors`` (always the case for the tiny default model, whose replies
   are rarely well-formed enough to be typed), errors are injected into the reference, one
   per type the student did not show, at the first turn where the type applies
   (``source='injected'``): (1) drop the nested call and summarise what came before;
   (2) use a wrong value where the output of an earlier call of the same turn was needed;
   (3) ignore an earlier turn's value and ask the user for it; (4) a reply that invents a
   fact (or leaves one out); (5) call the function where the turn should ask for a missing
   value, or ask where the turn could call. Every call of an injected turn is executed for
   real, so its tool messages are true outputs of the wrong calls.
3. **Negative trajectories.** As in the paper, the student re-samples the episode with the
   misleading hint: the turns before the hinted one are the reference's, the hinted turn's
   user message carries ``[Hint]: <wrong calls>`` (or ``missed params`` for a wrong
   question) in what the student sees. If that sample is not judged wrong (the student did
   not follow the hint) or the student is the tiny model's noise, the hinted turn is rebuilt
   from the hint itself: its calls executed in the episode's world, its reply.
4. **Pairs** (``mdpo_pairs``): the prompt is the system prompt (with the functions) and the
   first user turn; ``chosen`` is the reference from there through the end of the erroneous
   turn, ``rejected`` is the same conversation whose erroneous turn is the negative one. Both
   stop at the end of that turn because every later reference turn is conditioned on the
   correct outputs. Turns before the error are shared: they cancel in the DPO margin and count
   in the SFT term of the mDPO loss (:mod:`magnet_lib.training.mdpo`).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from magnet_lib.distillation.mixing import is_heldout
from magnet_lib.distillation.teacher import TeacherStepInput, calls_text, default_teacher, offline_summary, outputs_text
from magnet_lib.models import (
    OFFLINE,
    Call,
    Episode,
    Message,
    NegativeHint,
    PreferencePair,
    Tool,
    Trajectory,
    stable_hash,
)
from magnet_lib.pool.envs import is_error
from magnet_lib.pool.execution import EpisodeRuntime
from magnet_lib.pool.function_pool import load_pool
from magnet_lib.training import chat_format as cf
from magnet_lib.training.error_judge import (
    IDENT_PATTERN,
    NUMBER_PATTERN,
    JudgeErrorsTask,
    JudgeItem,
    JudgeVerdict,
    facts,
    final_text,
    found_in,
    judge_turn,
    number_text,
    output_facts,
    provenance,
    turn_calls,
)
from magnet_lib.training.reference import Reference, judge_item, match_references, runtime_tools
from magnet_lib.training.sft import effective_train, student_samples
from magnet_lib.training.student import (
    SampledTrajectory,
    Student,
    sample_episode,
    tool_message,
)
from magnet_lib.vocabulary import leaves


def _hint_id(*parts: Any) -> str:
    return "hint-" + stable_hash(list(parts))


# --------------------------------------------------------------------------- student errors


@dataclass
class StudentErrors:
    """What the student did on one episode: its hints and the counts behind them."""

    hints: list[NegativeHint] = field(default_factory=list)
    samples: int = 0
    judged_turns: int = 0
    correct_turns: int = 0
    unusable: int = 0  # wrong with no type: malformed, truncated, not offered, empty


def student_errors(student: Student, runner, ref: Reference, tools: Sequence[Tool], n: int, max_steps: int) -> StudentErrors:
    """Sample ``n`` trajectories, judge each turn against the reference up to the first
    wrong one, and turn typed wrong turns into negative hints (deduplicated)."""

    samples = sample_episode(student, ref.trajectory, tools, ref.seed, n, max_steps=max_steps, runner=ref.runner)
    result = StudentErrors(samples=len(samples))
    items: list[tuple[SampledTrajectory, int, JudgeItem]] = []
    for s in samples:
        for t in s.turns:
            items.append((s, t.index, judge_item(ref, t.index, s.turn_messages(t.index), truncated=t.truncated, malformed=t.malformed)))
    verdicts = runner.run(JudgeErrorsTask(), [it for _, _, it in items])
    first_wrong: dict[int, tuple[int, JudgeVerdict, str]] = {}
    for (s, index, _), res in zip(items, verdicts):
        if s.sample_index in first_wrong and first_wrong[s.sample_index][0] < index:
            continue
        result.judged_turns += 1
        verdict = res.value if res.ok else JudgeVerdict(correct=False, error_type=None, reason=f"judge failed: {res.reject_reason}")
        if verdict.correct:
            result.correct_turns += 1
        else:
            first_wrong[s.sample_index] = (index, verdict, res.generator)
    seen = set()
    for s in samples:
        if s.sample_index not in first_wrong:
            continue
        index, verdict, judge = first_wrong[s.sample_index]
        if verdict.error_type is None:
            result.unusable += 1
            continue
        responses = s.turn_messages(index)
        calls = [r.call for r in turn_calls(responses)]
        text = final_text(responses)
        key = (index, verdict.error_type, tuple(c.to_python() for c in calls), text)
        if key in seen:
            continue
        seen.add(key)
        result.hints.append(
            NegativeHint(
                hint_id=_hint_id(ref.trajectory.traj_id, "student", *map(str, key)),
                episode_id=ref.episode.episode_id,
                traj_id=s.traj_id,
                category=ref.trajectory.category,
                turn_index=index,
                error_type=verdict.error_type,
                reason=verdict.reason,
                wrong_calls=calls,
                wrong_text=text,
                source="student",
                judge=judge,
            )
        )
    return result


# --------------------------------------------------------------------------- injected errors


def describe_outputs(records) -> str:
    """A plain reply reporting outputs (the injected turns' summaries)."""
    parts = []
    for rec in records:
        out = rec.output
        if is_error(out):
            parts.append(f"{rec.call.name} failed: {out['error'].get('message', 'error')}")
            continue
        kv = [f"{(k or 'result').replace('_', ' ')} {v}" for k, v in list(leaves(out))[:4]]
        parts.append(f"{rec.call.name} gave {', '.join(kv) if kv else 'no details'}")
    return ("Here is what I found: " + "; ".join(parts) + ".") if parts else "Done."


def _call_rounds(runtime: EpisodeRuntime, calls: Sequence[Call], grouping: Sequence[int] = ()) -> Iterator[list[tuple[int, Call, Any]]]:
    """The calls grouped as the reference groups them (``grouping``: calls per message of the
    reference turn, used when the counts agree), else side by side until a call uses a value an
    earlier call's output gave (then it waits, one round later); each round executed."""
    outputs: list[Any] = []
    sizes = list(grouping) if sum(grouping) == len(calls) else []
    j = 0
    while j < len(calls):
        group = [calls[j]]
        j += 1
        limit = sizes.pop(0) if sizes else len(calls)
        while (
            j < len(calls)
            and len(group) < limit
            and (
                grouping and sum(grouping) == len(calls) or not any(found_in(v, [o]) for v in calls[j].arguments.values() for o in outputs)
            )
        ):
            group.append(calls[j])
            j += 1
        start = j - len(group)
        done = [(start + i, c, runtime.execute(c)) for i, c in enumerate(group)]
        outputs.extend(o for _, _, o in done)
        yield done


@dataclass(frozen=True)
class TurnStyle:
    """How the reference writes a turn's calls, so a rejected turn is written the same way and
    differs only in its error: calls per assistant message (``grouping``), the ``content`` of a
    message that makes calls (None or ""), and the call ids in order."""

    grouping: tuple[int, ...] = ()
    content: str | None = ""
    ids: tuple[str, ...] = ()

    def call_id(self, turn: int, j: int) -> str:
        """The reference's ``j``-th id of the turn; past its last, that id's pattern counted on."""
        if j < len(self.ids):
            return self.ids[j]
        if self.ids:
            last = self.ids[-1]
            match = re.search(r"(\d+)(\D*)$", last)
            if match:
                return last[: match.start(1)] + str(int(match.group(1)) + j - len(self.ids) + 1) + match.group(2)
        return cf.call_id(turn, j)


def turn_style(turn: Any) -> TurnStyle:
    """The style of a reference turn (its ``responses``); a turn with no calls gets the
    teacher's (empty content, ids ``call_<turn>_<j>``)."""
    calls = [m for m in getattr(turn, "responses", []) if m.get("role") == "assistant" and m.get("tool_calls")]
    if not calls:
        return TurnStyle()
    return TurnStyle(
        grouping=tuple(len(m["tool_calls"]) for m in calls),
        content=None if calls[0].get("content") is None else "",
        ids=tuple(str(c.get("id") or "") for m in calls for c in m["tool_calls"]),
    )


def teacher_reply(item: TeacherStepInput, runner=None) -> str:
    """The teacher's reply to a turn's outputs, asked as the chosen side's replies were: through
    ``runner`` (the model in LLM mode, the offline teacher else), so a rejected side and its
    chosen one are written by the same teacher. Without a runner, or when the teacher's answer
    is rejected, the offline teacher's reply."""
    if runner is not None:
        result = runner.run(default_teacher(), [item])[0]
        if result.ok and result.value.content.strip():
            return result.value.content
    return offline_summary(item)


def play_calls(
    runtime: EpisodeRuntime,
    calls: Sequence[Call],
    text: str | None,
    turn: int,
    query: str = "",
    style: TurnStyle | None = None,
    *,
    runner=None,
    tools: Sequence[dict[str, Any]] = (),
) -> list[Message]:
    """Assistant messages making ``calls`` in the reference turn's ``style`` (its grouping,
    content and call ids; by default the teacher's: ids ``call_<turn>_<j>``, empty content,
    independent calls side by side), each executed for real and answered by its tool message,
    then the reply: ``text``, else the teacher's own reply to the outputs for ``query``
    (:func:`teacher_reply` through ``runner``, with the offered ``tools``; offline it is seeded
    by the request, as the reference's), so a rejected side differs from the chosen only in
    its error."""
    style = style or TurnStyle()
    messages: list[Message] = []
    records = []
    transcript = [{"role": "user", "content": query}]
    for group in _call_rounds(runtime, calls, style.grouping):
        ids = [style.call_id(turn, j) for j, _, _ in group]
        messages.append({"role": "assistant", "content": style.content, "tool_calls": [c.to_openai(i) for (_, c, _), i in zip(group, ids)]})
        for (_, call, output), identifier in zip(group, ids):
            messages.append(tool_message(identifier, call, output))
            records.append({"function": call.name, "arguments": call.arguments, "output": output})
        transcript.append({"role": "assistant", "content": calls_text([c for _, c, _ in group])})
        transcript.append({"role": "user", "content": outputs_text([c for _, c, _ in group], [o for _, _, o in group])})
    if text is None:
        item = TeacherStepInput(tools=list(tools), transcript=transcript, expected="text", turn_outputs=records)
        text = teacher_reply(item, runner) if records else describe_outputs([])
    messages.append({"role": "assistant", "content": text})
    return messages


def _teacher_of(ref: Reference) -> dict[str, Any]:
    """Who writes a rejected reply: the reference's runner (the teacher in LLM mode) and tools."""
    return {"runner": ref.runner, "tools": ref.trajectory.tools}


def _user_text(turn: Any) -> str:
    user = getattr(turn, "user", None) or {}
    return str(user.get("content") or "") if isinstance(user, dict) else ""


def wrong_number(text: str, avoid: set[str] = frozenset()) -> str:
    """A plausible wrong figure for the number written ``text``: off by a tenth to a third of
    its size (at least one unit of its last digit), written the same way (sign, decimals), and
    none of the figures in ``avoid`` (what the outputs or the user said)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    unit = 10.0**-decimals
    value = float(text)
    for factor in (0.25, -0.2, 0.4, -0.35, 0.13):
        step = max(unit, round(abs(value) * abs(factor) / unit) * unit)
        candidate = value + step if factor > 0 else value - step
        if value >= 0 > candidate:
            continue
        out = f"{candidate:.{decimals}f}"
        if out != text and number_text(out) not in avoid:
            return out
    return f"{value + 7 * unit:.{decimals}f}"


def drop_fact(text: str, fact: str) -> str:
    """``text`` without the clause that states ``fact`` (between commas, colons, semicolons or sentence
    ends), as a reply that forgot it reads; the sentence itself when it is nothing else."""
    parts = re.split(r"(, |; |: |(?<=[.!?]) )", text)
    for i, part in enumerate(parts):
        if fact in part and i % 2 == 0:
            if i + 1 < len(parts):
                del parts[i : i + 2]
            elif i > 0:
                del parts[i - 1 : i + 1]
                parts[-1] = parts[-1].rstrip(",;") + ("" if parts[-1].endswith((".", "!", "?")) else ".")
            else:
                return text.replace(fact, "it")
            return "".join(parts).strip()
    return text


def _shifted_date(value: str) -> str | None:
    """The same date (and time) a day or two later, in the same format; None if not a date."""
    import datetime as dt

    match = re.match(r"^(\d{4}-\d{2}-\d{2})(.*)$", value)
    if not match:
        return None
    try:
        day = dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return (day + dt.timedelta(days=1 + len(value) % 2)).isoformat() + match.group(2)


def _other_value(value: Any, pools: Sequence[Any], rng: random.Random) -> Any:
    """A plausible wrong value: another value of the same kind from the outputs, else the
    value changed within its own form (a nearby number with the same decimals, a date a day
    later, an id with another last digit)."""
    if isinstance(value, bool):
        return not value
    options = []
    for out in pools:
        for _, leaf in leaves(out):
            if type(leaf) is type(value) and not found_in(leaf, [value]) and leaf not in options:
                if isinstance(value, str) and (value[:3] != str(leaf)[:3]):
                    continue  # same kind of identifier (prefix), not any string
                options.append(leaf)
    if options:
        return rng.choice(options)
    if isinstance(value, int):
        return int(wrong_number(str(value)))
    if isinstance(value, float):
        return float(wrong_number(repr(value)))
    if isinstance(value, str):
        shifted = _shifted_date(value)
        if shifted is not None:
            return shifted
        digits = re.sub(r"\d(?=\D*$)", lambda m: str((int(m.group()) + 3) % 10), value)
        return digits if digits != value else value + "-x"
    return value


@dataclass
class Injection:
    """An injected error: the hint and the rejected turn's messages (outputs real)."""

    hint: NegativeHint
    responses: list[Message]


def _injected_hint(ref: Reference, index: int, error_type: int, reason: str, calls: Sequence[Call], text: str | None) -> NegativeHint:
    return NegativeHint(
        hint_id=_hint_id(ref.trajectory.traj_id, "injected", index, error_type),
        episode_id=ref.episode.episode_id,
        traj_id=ref.trajectory.traj_id,
        category=ref.trajectory.category,
        turn_index=index,
        error_type=error_type,  # type: ignore[arg-type]
        reason=reason,
        wrong_calls=list(calls),
        wrong_text=text,
        source="injected",
        judge=OFFLINE,
    )


def _context(ref: Reference, index: int) -> tuple[list[Any], list[str], str]:
    history = ref.history(index)
    outputs = [rec.output for t in ref.turns[:index] for rec in turn_calls(t.responses)]
    users = [m.get("content") or "" for m in history if m.get("role") == "user"]
    return outputs, users, ref.turns[index].user.get("content") or ""


def inject_nested_missing(ref: Reference, tools: Sequence[Tool], rng: random.Random) -> Injection | None:
    """Type 1: the turn stops before its nested call and reports what it has."""
    for t in ref.turns:
        records = turn_calls(t.responses)
        for i, rec in enumerate(records):
            before = [r.output for r in records[:i] if r.round < rec.round]
            if before and any(found_in(v, before) for v in rec.call.arguments.values()):
                calls = [r.call for r in records[:i]]
                responses = play_calls(ref.world(tools, t.index), calls, None, t.index, _user_text(t), turn_style(t), **_teacher_of(ref))
                hint = _injected_hint(
                    ref,
                    t.index,
                    1,
                    f"drops the nested call {rec.call.name} on the output of {records[0].call.name}",
                    calls,
                    final_text(responses),
                )
                return Injection(hint, responses)
    return None


def inject_short_dependency(ref: Reference, tools: Sequence[Tool], rng: random.Random) -> Injection | None:
    """Type 2: the nested call gets a wrong value where an earlier output of the turn was needed."""
    for t in ref.turns:
        records = turn_calls(t.responses)
        for i, rec in enumerate(records):
            before = [r.output for r in records[:i] if r.round < rec.round]
            for k, v in rec.call.arguments.items():
                if before and found_in(v, before):
                    wrong = _other_value(v, before, rng)
                    calls = (
                        [r.call for r in records[:i]]
                        + [Call(name=rec.call.name, arguments={**rec.call.arguments, k: wrong})]
                        + [r.call for r in records[i + 1 :]]
                    )
                    responses = play_calls(
                        ref.world(tools, t.index), calls, None, t.index, _user_text(t), turn_style(t), **_teacher_of(ref)
                    )
                    reason = f"{rec.call.name}({k}={wrong!r}) instead of {v!r} from the output of an earlier call of the turn"
                    return Injection(_injected_hint(ref, t.index, 2, reason, calls, final_text(responses)), responses)
    return None


def inject_long_dependency(ref: Reference, tools: Sequence[Tool], rng: random.Random) -> Injection | None:
    """Type 3: the turn ignores a value an earlier turn gave and asks the user for it."""
    for t in ref.turns[1:]:
        outputs, users, query = _context(ref, t.index)
        records = turn_calls(t.responses)
        for i, rec in enumerate(records):
            same = [r.output for r in records[:i] if r.round < rec.round]
            for k, v in rec.call.arguments.items():
                if provenance(v, same, outputs, users, query) in ("earlier_output", "earlier_user"):
                    text = f"Could you tell me the {k.replace('_', ' ')} to use for this?"
                    return Injection(
                        _injected_hint(ref, t.index, 3, f"asks for {k} although an earlier turn gave {v!r}", [], text),
                        [{"role": "assistant", "content": text}],
                    )
    return None


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?|\b\d{1,2}:\d{2}\b")


def inject_wrong_summary(ref: Reference, tools: Sequence[Tool], rng: random.Random) -> Injection | None:
    """Type 4: the calls are right, the reply invents a number (or drops an identifier, or
    adds a made-up one)."""
    for t in ref.turns:
        records = turn_calls(t.responses)
        text = final_text(t.responses)
        if not records or not text:
            continue
        outputs, users, query = _context(ref, t.index)
        grounded = output_facts([r.output for r in records] + outputs) | facts(query) | {f for u in users for f in facts(u)}
        reported = facts(text) & output_facts([r.output for r in records])
        plain = _DATE_TIME.sub(" ", IDENT_PATTERN.sub(" ", text))  # a number inside a date or id is no quantity
        numbers = [n for n in NUMBER_PATTERN.findall(plain) if number_text(n) in reported]
        if numbers:
            old = numbers[0]
            new = wrong_number(old, grounded)
            wrong = re.sub(rf"(?<![\w.:\-]){re.escape(old)}(?![\w:\-])", new, text, count=1)
            reason = f"the reply says {new} where the output gave {old}"
        else:
            ids = sorted(f for f in reported if not f[0].isdigit())
            if ids:
                wrong = drop_fact(text, ids[0])
                reason = f"the reply leaves out {ids[0]}"
            else:
                code = f"CF-{rng.randrange(100000, 999999)}"
                wrong = f"{text} Your confirmation code is {code}."
                reason = f"the reply invents the code {code}"
        responses = [m for m in t.responses[:-1]] + [{"role": "assistant", "content": wrong}]
        return Injection(_injected_hint(ref, t.index, 4, reason, [], wrong), responses)
    return None


def inject_missed_params(ref: Reference, tools: Sequence[Tool], rng: random.Random) -> Injection | None:
    """Type 5: call the target of a miss_params turn with a guessed value instead of asking;
    with no such turn, ask for a value the user just gave instead of calling."""
    offered = {s.get("function", s)["name"] for s in ref.trajectory.tools}
    for t in ref.turns:
        if ref.label(t.index) != "miss_params" or t.index + 1 >= len(ref.turns):
            continue
        nxt = [r.call for r in turn_calls(ref.turns[t.index + 1].responses)]
        target = ref.episode.turns[t.index].target if len(ref.episode.turns) == len(ref.turns) else None
        guess = next((c for c in nxt if c.name == target), nxt[0] if nxt else None)
        if guess is None or guess.name not in offered:
            continue
        responses = play_calls(ref.world(tools, t.index), [guess], None, t.index, _user_text(t), turn_style(t), **_teacher_of(ref))
        reason = f"calls {guess.name} with a guessed value where it should ask for the missing one"
        return Injection(_injected_hint(ref, t.index, 5, reason, [guess], final_text(responses)), responses)
    for t in ref.turns:
        records = turn_calls(t.responses)
        if ref.label(t.index) != "call" or not records:
            continue
        outputs, users, query = _context(ref, t.index)
        sources = [provenance(v, [], outputs, users, query) for rec in records for v in rec.call.arguments.values()]
        if any(s in ("earlier_output", "earlier_user") for s in sources):
            continue  # asking here would be a long-dependency error
        first = records[0].call
        param = next(iter(first.arguments), None)
        if param is None:
            continue
        text = f"Which {param.replace('_', ' ')} would you like me to use?"
        return Injection(
            _injected_hint(ref, t.index, 5, f"asks for {param} where it could call {first.name}", [], text),
            [{"role": "assistant", "content": text}],
        )
    return None


INJECTORS = {
    1: inject_nested_missing,
    2: inject_short_dependency,
    3: inject_long_dependency,
    4: inject_wrong_summary,
    5: inject_missed_params,
}


def inject_errors(ref: Reference, tools: Sequence[Tool], types: Iterable[int] = (1, 2, 3, 4, 5)) -> list[Injection]:
    """One injected error per requested type that applies to the episode."""
    rng = random.Random(stable_hash(ref.trajectory.traj_id))
    out = []
    for error_type in sorted(set(types)):
        injection = INJECTORS[error_type](ref, tools, rng)
        if injection is not None:
            out.append(injection)
    return out


# --------------------------------------------------------------------------- negative trajectories


def misleading_hint(hint: NegativeHint) -> str | None:
    """The ``[Hint]`` text of a negative hint: the wrong calls as call strings, or
    ``missed params`` for a wrong question; None when a hint cannot express the error (a
    wrong reply after right calls)."""
    if hint.wrong_calls:
        return "[" + ", ".join(c.to_python() for c in hint.wrong_calls) + "]"
    if hint.error_type in (3, 5):
        return "missed params"
    return None


def rebuild_turn(ref: Reference, hint: NegativeHint, tools: Sequence[Tool]) -> list[Message]:
    """The hinted turn made from the hint itself: its calls executed in the episode's world
    (state before the turn), then its reply."""
    if hint.wrong_calls:
        return play_calls(
            ref.world(tools, hint.turn_index), hint.wrong_calls, hint.wrong_text, hint.turn_index, _user_text(ref.turns[hint.turn_index]),
            turn_style(ref.turns[hint.turn_index]), **_teacher_of(ref),
        )  # fmt: skip
    if hint.error_type == 4:
        return [m for m in ref.turns[hint.turn_index].responses[:-1]] + [{"role": "assistant", "content": hint.wrong_text or ""}]
    return [{"role": "assistant", "content": hint.wrong_text or ""}]


@dataclass
class NegativeTurn:
    responses: list[Message]
    error_type: int
    resampled: bool


def negative_turn(
    ref: Reference, hint: NegativeHint, tools: Sequence[Tool], student: Student | None, sample_index: int = 0
) -> NegativeTurn:
    """The rejected version of the hinted turn: the student re-sampled with the misleading
    hint when it makes a typed error that way (judged by the offline rules: the re-sample
    only has to be wrong, its type is recorded), else the turn rebuilt from the hint."""
    text = misleading_hint(hint)
    if student is not None and hint.source == "student" and text is not None:
        sample = sample_episode(
            student,
            ref.trajectory,
            tools,
            ref.seed,
            1,
            hints={hint.turn_index: text},
            replay_until=hint.turn_index,
            last_turn=hint.turn_index,
            first_sample=sample_index,
            runner=ref.runner,
        )[0]
        turn = sample.turns[-1]
        responses = sample.turn_messages(hint.turn_index)
        verdict = judge_turn(judge_item(ref, hint.turn_index, responses, truncated=turn.truncated, malformed=turn.malformed))
        if not verdict.correct and verdict.error_type is not None:
            return NegativeTurn(responses, verdict.error_type, True)
    return NegativeTurn(rebuild_turn(ref, hint, tools), hint.error_type, False)


def assemble_pair(ref: Reference, hint: NegativeHint, negative: NegativeTurn) -> PreferencePair:
    """prompt = system + first user turn; chosen / rejected = the reference through the end
    of the hinted turn, the rejected one with the negative turn in its place."""
    k = hint.turn_index
    turns = ref.turns
    prompt = ref.head + [turns[0].user]
    before = [*turns[0].responses, *(m for t in turns[1:k] for m in t.messages)] if k > 0 else []
    user_k = [turns[k].user] if k > 0 else []
    chosen = before + user_k + turns[k].responses
    rejected = before + user_k + negative.responses
    return PreferencePair(
        pair_id="pair-" + stable_hash([hint.hint_id, negative.resampled]),
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        tools=ref.trajectory.tools,
        error_type=negative.error_type,  # type: ignore[arg-type]
        source=hint.source,
        category=ref.trajectory.category,
        episode_id=ref.episode.episode_id,
        traj_id=ref.trajectory.traj_id,
        hint_id=hint.hint_id,
    )


# --------------------------------------------------------------------------- per category and overall


@dataclass
class HintsReport:
    """Counts for the asset metadata."""

    episodes: int = 0
    student_episodes: int = 0
    samples: int = 0
    judged_turns: int = 0
    correct_turns: int = 0
    unusable_turns: int = 0
    student_hints: int = 0
    injected_hints: int = 0
    by_type: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "by_type"}
        out["by_type"] = {str(k): v for k, v in sorted(self.by_type.items())}
        return out


def tool_pool(settings) -> dict[str, Tool]:
    return {t.name: t for t in load_pool(settings).tools}


def negative_hints(
    settings,
    episodes: Sequence[Episode],
    trajectories: Sequence[Trajectory],
    runner,
    student: Student | None = None,
    pool: dict[str, Tool] | None = None,
) -> tuple[list[NegativeHint], HintsReport]:
    """The negative hints of one category: the student's judged errors on the first
    ``train.student_instances`` episodes, and injected errors wherever the student showed
    fewer than ``train.min_student_errors``."""

    train = effective_train(settings)
    refs = match_references(episodes, trajectories, runner)
    pool = pool if pool is not None else tool_pool(settings)
    report = HintsReport(episodes=len(refs))
    hints: list[NegativeHint] = []
    limit = len(refs) if train.student_instances is None else train.student_instances
    for i, ref in enumerate(refs):
        tools = runtime_tools(ref, pool)
        found: list[NegativeHint] = []
        if student is not None and i < limit:
            errs = student_errors(student, runner, ref, tools, student_samples(settings), train.student_max_steps)
            report.student_episodes += 1
            report.samples += errs.samples
            report.judged_turns += errs.judged_turns
            report.correct_turns += errs.correct_turns
            report.unusable_turns += errs.unusable
            found = errs.hints
        if len(found) < train.min_student_errors:
            shown = {h.error_type for h in found}
            found += [inj.hint for inj in inject_errors(ref, tools, [t for t in (1, 2, 3, 4, 5) if t not in shown])]
        found = found[: train.max_pairs_per_episode]
        hints.extend(found)
    for h in hints:
        report.by_type[h.error_type] += 1
        if h.source == "student":
            report.student_hints += 1
        else:
            report.injected_hints += 1
    return hints, report


def preference_pairs(
    settings,
    hints: Sequence[NegativeHint],
    episodes: Sequence[Episode],
    trajectories: Sequence[Trajectory],
    student: Student | None = None,
    pool: dict[str, Tool] | None = None,
    runner=None,
    heldout_walks: set[str] | frozenset[str] | None = None,
) -> tuple[list[PreferencePair], dict[str, Any]]:
    """One mDPO pair per negative hint whose reference is known (``runner`` simulates
    spec-only tools in LLM mode). Trajectories of the held-out walks (``heldout_walks``:
    the ``parent_fsp_id`` of sft_set's held-out split) make no pair: the mDPO model would
    train on its evaluation episodes. By default the walks the SFT mix holds out (the same
    seeded rule, :func:`~magnet_lib.distillation.mixing.is_heldout`)."""
    if heldout_walks is None:
        d = settings.distill
        heldout_walks = {t.parent_fsp_id or t.fsp_id for t in trajectories if is_heldout(t, d.heldout_fraction, settings.seed)}
    kept = [t for t in trajectories if (t.parent_fsp_id or t.fsp_id) not in heldout_walks]
    refs = {r.episode.episode_id: r for r in match_references(episodes, kept, runner)}
    heldout_episodes = {t.episode_id for t in trajectories if (t.parent_fsp_id or t.fsp_id) in heldout_walks}
    pool = pool if pool is not None else tool_pool(settings)
    pairs: list[PreferencePair] = []
    counts: Counter = Counter()
    for i, hint in enumerate(hints):
        if hint.episode_id in heldout_episodes:
            counts["heldout"] += 1
            continue
        ref = refs.get(hint.episode_id)
        if ref is None or hint.turn_index >= len(ref.turns):
            counts["no_reference"] += 1
            continue
        negative = negative_turn(ref, hint, runtime_tools(ref, pool), student, sample_index=i)
        counts["resampled" if negative.resampled else "rebuilt"] += 1
        pairs.append(assemble_pair(ref, hint, negative))
    return pairs, dict(counts)
