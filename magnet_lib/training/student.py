"""Student sampling: trajectories of the SFT model on the episodes of the translation stage
(paper section 3.5, negative part: 10 samples per instance).

The student replays an episode turn by turn: for each user turn of the reference it answers,
its tool calls are parsed and **executed for real** in a fresh :class:`EpisodeRuntime` of the
episode (same tools, same seed), the outputs go back as tool messages, and it answers again
until it replies in words (or ``max_steps`` responses). Samples of one episode run in lock
step, so a step is one batch.

Two ways to serve the student:

- :class:`TransformersStudent`: the checkpoint in process, ``generate`` with sampling (the
  default; batches the samples of a step);
- :class:`ServedStudent`: any OpenAI-compatible server (vLLM serving the checkpoint) through
  the LLM layer: the task ``student_step`` sends the conversation so far as the messages and
  parses the ``<tool_call>`` blocks of the answer; ``sample_index`` tells the samples apart in
  the response cache. Serve the model without a tool-call parser (vLLM: no
  ``--enable-auto-tool-choice``) so the calls come back as text.

A misleading hint (see :mod:`magnet_lib.training.hints`) is appended to a user message as
``\\n[Hint]: ...`` in what the student sees, never in the recorded trajectory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.llm.runner import TaskRunner
from magnet_lib.llm.task import Task
from magnet_lib.models import Call, Message, Tool, Trajectory
from magnet_lib.pool.execution import EpisodeRuntime, make_runtime
from magnet_lib.tool_calls import parse_response
from magnet_lib.training import chat_format as cf
from magnet_lib.training.base_models import END_OF_TURN, IM_END
from magnet_lib.training.chat_format import template_messages
from magnet_lib.training.error_judge import ChatTurn, split_turns, turn_calls
from magnet_lib.training.sft import effective_train


class StudentReply(BaseModel):
    """One assistant message of the student, parsed."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    calls: list[Call] = Field(default_factory=list)
    malformed: list[str] = Field(default_factory=list, description="Tool-call blocks that are not JSON name + arguments.")
    truncated: bool = Field(False, description="Cut by the token budget before the end-of-turn token.")
    reject_reason: str | None = None


@dataclass
class StudentRequest:
    """The conversation so far as the student sees it (hints included) and its tools."""

    messages: list[Message]
    tools: list[dict[str, Any]]
    sample_index: int = 0
    reference: Message | None = None  # the reference's message at this point (offline answers)


class Student(Protocol):
    name: str

    def respond(self, requests: Sequence[StudentRequest]) -> list[StudentReply]: ...


def reply_from_text(text: str, stopped: bool = True) -> StudentReply:
    parsed = parse_response(text, stop=END_OF_TURN)
    return StudentReply(text=parsed.text, calls=parsed.calls, malformed=parsed.malformed, truncated=not stopped)


def native_reply(text: str) -> StudentReply | None:
    """A reply from native tool calls, which the LLM client writes as
    ``{"content": ..., "tool_calls": [{"name", "arguments"}]}``; None for any other text."""
    if not text.startswith('{"content"'):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("tool_calls"), list):
        return None
    calls, malformed = [], []
    for tc in data["tool_calls"]:
        args = tc.get("arguments") if isinstance(tc, dict) else None
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = None
        if isinstance(tc, dict) and isinstance(tc.get("name"), str) and isinstance(args, dict):
            calls.append(Call(name=tc["name"], arguments=args))
        else:
            malformed.append(json.dumps(tc, ensure_ascii=False)[:200])
    return StudentReply(text=(data.get("content") or "").strip(), calls=calls, malformed=malformed)


class TransformersStudent:
    """The SFT checkpoint in process: left-padded batches, sampled with ``generate``."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model=None,
        tokenizer=None,
        max_new_tokens: int = 512,
        temperature: float = 1.0,
        seed: int = 0,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = f"transformers:{path}" if path else "transformers"
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
        self.model = model or AutoModelForCausalLM.from_pretrained(path)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.calls = 0
        self.generated_tokens = 0
        eos = self.model.generation_config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        self.eos_ids = sorted(
            {i for i in [*eos, self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids(IM_END)] if isinstance(i, int) and i >= 0}
        )
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]

    def respond(self, requests: Sequence[StudentRequest]) -> list[StudentReply]:
        import torch

        if not requests:
            return []
        texts = [
            self.tokenizer.apply_chat_template(
                template_messages(r.messages), tools=r.tools or None, tokenize=False, add_generation_prompt=True
            )
            for r in requests
        ]
        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(len(e) for e in encoded)
        ids = torch.tensor([[self.pad_id] * (width - len(e)) + e for e in encoded], device=self.device)
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=self.device)
        torch.manual_seed(self.seed * 1_000_003 + self.calls)
        self.calls += 1
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=self.max_new_tokens,
                do_sample=self.temperature > 0,
                temperature=self.temperature if self.temperature > 0 else None,
                top_p=None,
                top_k=None,
                eos_token_id=self.eos_ids,
                pad_token_id=self.pad_id,
            )
        replies = []
        for row in out[:, width:].tolist():
            stopped = any(t in self.eos_ids for t in row)
            if stopped:
                row = row[: min(row.index(t) for t in self.eos_ids if t in row)]
            self.generated_tokens += len(row)
            replies.append(reply_from_text(self.tokenizer.decode(row, skip_special_tokens=False), stopped))
        return replies


# --------------------------------------------------------------------------- the served student


class StudentStepInput(BaseModel):
    """One student response asked of a served model: the conversation so far."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    reference: Message | None = Field(None, description="The reference's message at this point (offline answer).")


class StudentStepTask(Task[StudentStepInput, StudentReply]):
    """``student_step``: the messages are the conversation itself (system prompt with the
    functions, user turns, the student's calls and the tool outputs); the answer is parsed
    for ``<tool_call>`` blocks. Offline (the local test server) it answers with the
    reference's message, a student that makes no error."""

    name = "student_step"
    template = "(conversation as is)"
    input_model = StudentStepInput
    output_model = StudentReply

    @cached_property
    def template_text(self) -> str:  # no template file: the conversation is the prompt
        return "student_step v1: the conversation so far, rendered by the served model's chat template"

    def render(self, item: StudentStepInput) -> list[dict[str, Any]]:
        # without native tools the served model's template never sees ``tools``: the system prompt lists them
        messages = item.messages if self.native_tools else cf.with_function_json(item.messages, item.tools)
        out = []
        for m in messages:
            msg = {k: v for k, v in m.items() if k in ("role", "content", "tool_calls", "tool_call_id", "name") and v is not None}
            msg.setdefault("content", "")
            out.append(msg)
        return out

    def __init__(self, native_tools: bool = False):
        #: send the functions as ``tools`` (native function calling: the server's own tool
        #: template and parser, e.g. vLLM with --enable-auto-tool-choice) instead of only in
        #: the system prompt; the calls then come back as ``tool_calls``
        self.native_tools = native_tools

    def request_params(self, item: StudentStepInput) -> dict[str, Any]:
        return {"tools": item.tools} if self.native_tools and item.tools else {}

    def response_schema(self, item: StudentStepInput) -> None:
        return None  # text with <tool_call> blocks, or native tool calls: no JSON schema

    def parse(self, text: str, item: StudentStepInput) -> StudentReply:
        native = native_reply(text)
        return native if native is not None else reply_from_text(text)

    def answer_text(self, output: StudentReply) -> str:
        blocks = "".join(
            "<tool_call>\n" + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False) + "\n</tool_call>"
            for c in output.calls
        )
        return output.text + blocks

    def offline(self, item: StudentStepInput) -> StudentReply:
        ref = item.reference or {"role": "assistant", "content": ""}
        return StudentReply(text=ref.get("content") or "", calls=[rec.call for rec in turn_calls([ref])])


class ServedStudent:
    """The student behind an OpenAI-compatible server, through the task runner."""

    def __init__(self, runner, *, max_new_tokens: int = 512, temperature: float = 1.0, native_tools: bool = False):
        self.runner = runner
        self.task = StudentStepTask(native_tools=native_tools)
        self.name = runner.model_for(self.task) or "offline"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def respond(self, requests: Sequence[StudentRequest]) -> list[StudentReply]:
        replies: list[StudentReply | None] = [None] * len(requests)
        for k in sorted({r.sample_index for r in requests}):
            idx = [i for i, r in enumerate(requests) if r.sample_index == k]
            items = [StudentStepInput(messages=requests[i].messages, tools=requests[i].tools, reference=requests[i].reference) for i in idx]
            results = self.runner.run(self.task, items, temperature=self.temperature, max_tokens=self.max_new_tokens, sample_index=k)
            for i, res in zip(idx, results):
                replies[i] = (
                    res.value if res.ok else StudentReply(reject_reason=res.reject_reason, malformed=[f"no answer: {res.reject_reason}"])
                )
        return replies  # type: ignore[return-value]


def load_student(settings, path: Path | None = None, runner=None) -> Student:
    """The student of the run: a served model when ``train.student_model`` is set, else the
    SFT checkpoint in process."""

    train = effective_train(settings)
    if train.student_model:
        llm = settings.llm.model_copy(
            update={"model": train.student_model, "api_base": train.student_api_base or settings.llm.api_base, "task_models": {}}
        )
        return ServedStudent(
            runner or TaskRunner(llm, cache_dir=settings.cache_dir),
            max_new_tokens=train.student_max_new_tokens,
            temperature=train.student_temperature,
            native_tools=train.student_native_tools,
        )
    path = Path(path or Path(settings.checkpoints_dir) / "sft")
    return TransformersStudent(path, max_new_tokens=train.student_max_new_tokens, temperature=train.student_temperature, seed=settings.seed)


# --------------------------------------------------------------------------- sampling an episode


@dataclass
class SampledTurn:
    """Where a turn of a sampled trajectory lies in its messages, and how it ended."""

    index: int
    start: int  # index of the user message
    end: int  # one past the last message of the turn
    truncated: bool = False
    malformed: list[str] = field(default_factory=list)
    hinted: bool = False


@dataclass
class SampledTrajectory:
    """One student trajectory on an episode (hints never appear in ``messages``)."""

    reference: Trajectory
    sample_index: int
    messages: list[Message]
    turns: list[SampledTurn]
    generator: str = ""

    @property
    def traj_id(self) -> str:
        return f"{self.reference.traj_id}/s{self.sample_index}"

    def turn_messages(self, index: int) -> list[Message]:
        t = next(t for t in self.turns if t.index == index)
        return self.messages[t.start + 1 : t.end]


def tool_message(call_id: str, call: Call, output: Any) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": call.name, "content": json.dumps(output, ensure_ascii=False, sort_keys=True)}


def with_hint(user: Message, hint: str) -> Message:
    return {**user, "content": f"{user.get('content') or ''}\n[Hint]: {hint}"}


def replay(runtime: EpisodeRuntime, responses: Sequence[Message]) -> None:
    """Execute the calls of reference messages so the world is in the state they leave."""
    for rec in turn_calls(responses):
        runtime.execute(rec.call)


@dataclass
class _Sample:
    """One trajectory in the making: the recorded messages, the student's view of them
    (hints included), its world and its turns."""

    k: int
    runtime: EpisodeRuntime
    messages: list[Message]
    view: list[Message]
    turns: list[SampledTurn] = field(default_factory=list)

    @property
    def unusable(self) -> bool:
        """Its last turn was cut by the token budget or holds a malformed call."""
        return bool(self.turns) and bool(self.turns[-1].truncated or self.turns[-1].malformed)

    def add(self, message: Message) -> None:
        self.messages.append(message)
        self.view.append(message)

    def replay(self, turn: ChatTurn) -> None:
        """The reference's turn, executed in this sample's world."""
        replay(self.runtime, turn.responses)
        self.messages.extend(turn.messages)
        self.view.extend(turn.messages)

    def open_turn(self, turn: ChatTurn, hint: str | None) -> None:
        self.turns.append(SampledTurn(index=turn.index, start=len(self.messages), end=0, hinted=hint is not None))
        self.messages.append(turn.user)
        self.view.append(with_hint(turn.user, hint) if hint is not None else turn.user)

    def take(self, reply: StudentReply, step: int) -> bool:
        """Record a reply of the student in the open turn and execute its calls; True when it
        made calls (the turn goes on with their outputs)."""
        turn = self.turns[-1]
        if reply.malformed or reply.truncated:
            turn.malformed, turn.truncated = list(reply.malformed), reply.truncated
            self.add({"role": "assistant", "content": reply.text or ""})
            return False
        ids = [f"call_s{self.k}_{turn.index}_{step}_{j}" for j in range(len(reply.calls))]
        message: Message = {"role": "assistant", "content": reply.text or None}
        if reply.calls:
            message["tool_calls"] = [c.to_openai(i) for c, i in zip(reply.calls, ids)]
        self.add(message)
        for cid, call in zip(ids, reply.calls):
            self.add(tool_message(cid, call, self.runtime.execute(call)))
        return bool(reply.calls)


def sample_episode(
    student: Student,
    reference: Trajectory,
    tools: Sequence[Tool],
    seed: int,
    n: int,
    *,
    max_steps: int = 4,
    hints: dict[int, str] | None = None,
    replay_until: int = 0,
    last_turn: int | None = None,
    first_sample: int = 0,
    stop_when_unusable: bool = True,
    runner=None,
) -> list[SampledTrajectory]:
    """``n`` student trajectories of the reference's episode. Turns before ``replay_until``
    are the reference's (replayed in the world); turns up to ``last_turn`` (default: all)
    are the student's, with ``hints[turn]`` appended to that turn's user message in what the
    student sees. A sample whose reply is cut by the token budget or holds a malformed call
    stops there (``stop_when_unusable``): the judge stops at a sample's first wrong turn.
    ``runner`` simulates spec-only tools in LLM mode."""
    head, turns = split_turns(reference.messages)
    last = len(turns) - 1 if last_turn is None else min(last_turn, len(turns) - 1)
    hints = hints or {}
    samples = [_Sample(k, make_runtime(tools, seed, runner), list(head), list(head)) for k in range(first_sample, first_sample + n)]
    for t in turns[:replay_until]:
        for s in samples:
            s.replay(t)
    for t in turns[replay_until : last + 1]:
        active = [s for s in samples if not (stop_when_unusable and s.unusable)]
        for s in active:
            s.open_turn(t, hints.get(t.index))
        student_turn(student, reference.tools, active, t, max_steps)
        for s in active:
            s.turns[-1].end = len(s.messages)
    generator = getattr(student, "name", "")
    return [
        SampledTrajectory(reference=reference, sample_index=s.k, messages=s.messages, turns=s.turns, generator=generator) for s in samples
    ]


def student_turn(student: Student, tools: list[dict[str, Any]], samples: Sequence[_Sample], turn: ChatTurn, max_steps: int) -> None:
    """The student answers one turn for every sample in lock step (one batch a step): the
    outputs of its calls go back until it replies in words, or ``max_steps`` replies."""
    ref_steps = [m for m in turn.responses if m.get("role") == "assistant"]
    live = list(samples)
    for step in range(max_steps):
        if not live:
            break
        ref_step = ref_steps[step] if step < len(ref_steps) else None
        replies = student.respond([StudentRequest(messages=s.view, tools=tools, sample_index=s.k, reference=ref_step) for s in live])
        live = [s for s, reply in zip(live, replies) if s.take(reply, step)]
