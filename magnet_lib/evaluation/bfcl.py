"""BFCL v3 as the yardstick: the Berkeley Function Calling Leaderboard's own data, protocol and
checkers, run on any checkpoint or served model (paper section 4: BFCL-v3 overall and
multi-turn accuracy).

Nothing of BFCL is copied here: the entries, the ground truth, the function docs, the
executable classes, the system prompt, the decoders and the checkers are imported from the
``bfcl-eval`` package (installed with ``--no-deps``, see the README). What this module adds
is the loop that BFCL's model handlers run, over our model backends:

- **multi-turn** (``multi_turn_base``, ``miss_func``, ``miss_param``, ``long_context``):
  BFCL's system prompt and function docs (prompting) or its tool conversion (native tool
  calling); the held-out functions of a ``miss_func`` entry are added at their turn the way
  BFCL adds them (prompting: the docs in the user message; native: appended to the tools,
  with BFCL's "I have updated some more functions" message); each step's calls are decoded
  by BFCL's decoder and executed on BFCL's classes initialised from the entry's
  ``initial_config`` (BFCL's ``execute_multi_turn_func_call``); a turn ends on a reply
  without calls or one that does not decode; more than BFCL's ``MAXIMUM_STEP_LIMIT`` steps
  force-quit the entry. Scored by BFCL's ``multi_turn_checker`` (state and response checks
  after every turn).
- **single-turn** (``simple_python``, ``multiple``, ``parallel``, ``parallel_multiple``):
  BFCL's AST checker against ``possible_answer``; ``irrelevance``: correct when the answer
  holds no decodable call, BFCL's relevance rule.

Entries run in lock step: every live entry asks for its next response at once, so a served
model sees up to ``llm.concurrency`` requests in flight (the LLM layer's retries and
response cache apply). A failure of one entry (a class that fails to load, an answer that
never came, a model that crashes) fails that entry with its reason; the run completes.

Aggregation follows BFCL's leaderboard: the multi-turn overall and the non-live AST summary
are unweighted means of their categories (simple = ``simple_python`` here: the Java and
JavaScript categories are not run), and the overall is BFCL's percentage-weighted mean of
the groups (non-live 10, irrelevance 10, multi-turn 30; live and agentic are not run), the
weights renormalised over the groups evaluated.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import os
import re
import sys
import tempfile
import types
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.llm.task import Task
from magnet_lib.training.base_models import template_messages
from magnet_lib.training.student import StudentRequest, TransformersStudent

MULTI_TURN = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
AST_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
RELEVANCE = ("irrelevance",)
SINGLE_TURN = (*AST_CATEGORIES, *RELEVANCE)
DEFAULT_CATEGORIES = (*MULTI_TURN, *SINGLE_TURN)
STYLES = ("prompting", "fc")
#: BFCL's leaderboard weights of the groups we run (its overall: non-live 10, live 10,
#: irrelevance 10, multi-turn 30, agentic 40)
GROUP_WEIGHTS = {"non_live": 10, "irrelevance": 10, "multi_turn": 30}
#: model names handed to BFCL's AST checker (it looks up whether '.' in function names was
#: turned into '_' for the model, as OpenAI-style tools require)
_CHECKER_MODEL = {"prompting": "magnet_prompting", "fc": "magnet_fc"}


class BfclUnavailable(RuntimeError):
    """bfcl-eval is not installed (or one of the few packages its checkers import is missing)."""


# --------------------------------------------------------------------------- the bfcl-eval package


def _prepare_environment() -> None:
    # bfcl-eval creates result/, score/ and lock folders under BFCL_PROJECT_ROOT at import
    # (by default next to site-packages); keep them in a temporary folder of ours
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(Path(tempfile.gettempdir()) / "magnet-bfcl"))


def unavailable_reason() -> str | None:
    """None when bfcl-eval and what its multi-turn checker and decoders import are here; else why not."""
    if importlib.util.find_spec("bfcl_eval") is None:
        return "bfcl-eval is not installed (pip install --no-deps bfcl-eval==2026.3.23 && pip install -e '.[bfcl]')"
    try:
        _bfcl()
    except ImportError as exc:
        return f"bfcl-eval does not import: {exc} (pip install -e '.[bfcl]' installs what it needs)"
    return None


def available() -> bool:
    return unavailable_reason() is None


_MODULES: dict[str, Any] = {}


def _bfcl() -> types.SimpleNamespace:
    """bfcl-eval's modules, imported once. Its AST checker imports the table of every model
    BFCL knows (and so every provider SDK); when those are absent it is imported against a
    table holding only our two model names (the only thing the checker reads from it is
    whether a model turned '.' in function names into '_')."""
    if _MODULES:
        return _MODULES["ns"]
    _prepare_environment()
    from bfcl_eval import utils
    from bfcl_eval.constants import default_prompts, enums, executable_backend_config, type_mappings
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_checker, multi_turn_utils
    from bfcl_eval.model_handler import utils as handler_utils

    name = "bfcl_eval.constants.model_config"
    shimmed = False
    try:
        importlib.import_module(name)
    except ImportError:  # the provider SDKs are not installed: a table of our models only
        shim = types.ModuleType(name)
        shim.MODEL_CONFIG_MAPPING = {}  # type: ignore[attr-defined]
        sys.modules[name] = shim
        shimmed = True
    try:
        ast_checker = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
    finally:
        if shimmed:
            sys.modules.pop(name, None)
    for style, model in _CHECKER_MODEL.items():
        ast_checker.MODEL_CONFIG_MAPPING.setdefault(model.replace("_", "/"), types.SimpleNamespace(underscore_to_dot=style == "fc"))
    ns = types.SimpleNamespace(
        utils=utils,
        handler_utils=handler_utils,
        prompts=default_prompts,
        enums=enums,
        backend=executable_backend_config,
        type_mappings=type_mappings,
        mt_utils=multi_turn_utils,
        mt_checker=multi_turn_checker,
        ast_checker=ast_checker,
    )
    _MODULES["ns"] = ns
    return ns


def require() -> types.SimpleNamespace:
    reason = unavailable_reason()
    if reason:
        raise BfclUnavailable(reason)
    return _bfcl()


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version("bfcl-eval")
    except PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- entries


def load_entries(category: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` entries of a category as BFCL's generator loads them (function docs
    of multi-turn entries filled in, held-out functions moved to ``missed_function``, the
    language hint added), each with its ``ground_truth`` (absent for irrelevance)."""
    b = require()
    if category not in DEFAULT_CATEGORIES:
        raise ValueError(f"unknown or unsupported BFCL category {category!r}; choose from {', '.join(DEFAULT_CATEGORIES)}")
    entries = b.utils.load_dataset_entry(category)
    if limit is not None:
        entries = entries[:limit]
    if category not in RELEVANCE:
        truth = {g["id"]: g["ground_truth"] for g in b.utils.load_ground_truth_entry(category)}
        for e in entries:
            e["ground_truth"] = truth[e["id"]]
    return entries


def multi_turn_paths(categories: Sequence[str] = MULTI_TURN) -> list[dict[str, Any]]:
    """Every multi-turn entry's ground-truth path: the function names it calls, in order
    (for the contamination report)."""
    b = require()
    out = []
    for category in categories:
        for g in b.utils.load_ground_truth_entry(category):
            names = [call_name(c) for turn in g["ground_truth"] for c in turn]
            out.append({"id": g["id"], "category": category, "path": [n for n in names if n]})
    return out


def call_name(call: str) -> str | None:
    m = re.match(r"\s*([A-Za-z_][\w.]*)\s*\(", call)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- model backends


@dataclass
class StepReply:
    """One model response. ``text``: the answer (prompting: the call string); ``tool_calls``:
    native calls as ``{"name", "arguments"}`` (arguments an object); ``error``: no answer
    (transport failure, timeout, a reply the backend could not read)."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class StepRequest:
    entry_id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]  # OpenAI tools (native style), else []
    reference: StepReply  # BFCL's ground truth for this step (the reference model; offline answers)


class Backend(Protocol):
    name: str
    style: str  # "prompting" | "fc"
    #: prompting: how execution results go back, as one ``user`` message (BFCL's API handlers)
    #: or as ``tool`` messages (its local-model handlers)
    results_as: str

    def respond(self, requests: Sequence[StepRequest]) -> list[StepReply]: ...


class ReferenceBackend:
    """BFCL's ground truth as the model: each turn's calls at its first step, then a reply
    without calls. Scores 100% when the harness is right (``magnet eval --bfcl --reference``)."""

    def __init__(self, style: str = "prompting"):
        self.name, self.style, self.results_as = "reference", style, "user"

    def respond(self, requests: Sequence[StepRequest]) -> list[StepReply]:
        return [copy.deepcopy(r.reference) for r in requests]


class TransformersBackend:
    """A checkpoint folder in process, greedy. ``fc``: the tools go through the chat template
    and calls come back as ``<tool_call>`` blocks (how Magnet trains); ``prompting``: BFCL's
    system prompt, the call string read from the text."""

    def __init__(self, path: str | Path, style: str = "fc", *, max_new_tokens: int = 512, seed: int = 0):
        self.student = TransformersStudent(path, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
        self.name, self.style, self.results_as = Path(path).name, style, "tool"

    def context_overflow(self, request: StepRequest) -> str | None:
        """Why a prompt cannot be answered: longer than the model's context (minus the reply's budget)."""
        limit = getattr(self.student.model.config, "max_position_embeddings", None)
        if not limit:
            return None
        tok = self.student.tokenizer
        text = tok.apply_chat_template(
            template_messages(request.messages), tools=request.tools or None, tokenize=False, add_generation_prompt=True
        )
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        budget = limit - self.student.max_new_tokens
        return (
            f"the prompt has {n} tokens, more than the model's context of {limit} less {self.student.max_new_tokens} for the reply"
            if n > budget
            else None
        )

    def respond(self, requests: Sequence[StepRequest]) -> list[StepReply]:
        out: list[StepReply | None] = [None] * len(requests)
        todo = []
        for i, r in enumerate(requests):
            try:
                overflow = self.context_overflow(r)
            except Exception as exc:  # a chat template that does not take the conversation
                overflow = f"the chat template failed: {type(exc).__name__}: {str(exc)[:200]}"
            if overflow:
                out[i] = StepReply(error=overflow)
            else:
                todo.append(i)
        if todo:
            try:
                replies = self.student.respond([StudentRequest(messages=requests[i].messages, tools=requests[i].tools) for i in todo])
            except Exception as exc:  # the model fails on the batch (memory, a generation error)
                replies = None
                for i in todo:
                    out[i] = StepReply(error=f"generation failed: {type(exc).__name__}: {str(exc)[:200]}")
            for i, reply in zip(todo, replies or []):
                calls = [{"name": c.name, "arguments": c.arguments} for c in reply.calls]
                out[i] = StepReply(text=reply.text, tool_calls=calls if self.style == "fc" else [])
        return out  # type: ignore[return-value]


class BfclStepInput(BaseModel):
    """One response asked of a served model: the conversation so far and, native style, the tools."""

    model_config = ConfigDict(extra="forbid")

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    style: str = "prompting"
    reference: dict[str, Any] = Field(default_factory=dict, description="BFCL's ground truth for this step (the offline answer).")


class BfclStepOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)


class BfclStepTask(Task[BfclStepInput, BfclStepOutput]):
    """``bfcl_step``: the messages are BFCL's conversation as is; native style sends the tools
    as the request's ``tools``. Every answer is usable (BFCL never re-asks: a reply without a
    decodable call ends the turn). Offline (no model, or the local test server) it answers
    with BFCL's ground truth."""

    name = "bfcl_step"
    template = "(conversation as is)"
    input_model = BfclStepInput
    output_model = BfclStepOutput
    temperature = 0.0

    @cached_property
    def template_text(self) -> str:  # no template file: BFCL's conversation is the prompt
        return "bfcl_step v1: BFCL's conversation, system prompt and tools as bfcl-eval builds them"

    def render(self, item: BfclStepInput) -> list[dict[str, Any]]:
        out = []
        for m in item.messages:
            msg = {k: v for k, v in m.items() if k in ("role", "content", "tool_calls", "tool_call_id", "name") and v is not None}
            if m.get("role") == "tool" and item.style != "fc":
                msg.pop("name", None)
            msg.setdefault("content", "")
            out.append(msg)
        return out

    def request_params(self, item: BfclStepInput) -> dict[str, Any]:
        return {"tools": item.tools} if item.style == "fc" and item.tools else {}

    def parse(self, text: str, item: BfclStepInput) -> BfclStepOutput:
        if item.style == "fc":
            try:  # native calls come back as {"content", "tool_calls"} (see llm.client.answer_text)
                data = json.loads(text)
            except (json.JSONDecodeError, TypeError):
                data = None
            if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
                calls = [c for c in data["tool_calls"] if isinstance(c, dict) and isinstance(c.get("name"), str)]
                for c in calls:
                    if not isinstance(c.get("arguments"), dict):
                        c["arguments"] = {}
                return BfclStepOutput(text=data.get("content") or "", tool_calls=calls)
        return BfclStepOutput(text=text or "")

    def answer_text(self, output: BfclStepOutput) -> str:
        if output.tool_calls:
            return json.dumps({"content": output.text or None, "tool_calls": output.tool_calls}, ensure_ascii=False)
        return output.text

    def offline(self, item: BfclStepInput) -> BfclStepOutput:
        return BfclStepOutput.model_validate(item.reference or {})


class ServedBackend:
    """Any LiteLLM model (a vLLM server through ``api_base``, a provider) through the task
    runner: concurrency, retries, rate limits and the response cache of the LLM layer. An
    item the runner rejects (transport failure, timeout) fails its entry with the reason."""

    def __init__(self, runner, style: str = "prompting", *, max_tokens: int | None = None, name: str | None = None):
        self.runner = runner
        self.task = BfclStepTask()
        self.style, self.results_as = style, "user"
        self.max_tokens = max_tokens
        self.name = name or runner.model_for(self.task) or "offline"

    def respond(self, requests: Sequence[StepRequest]) -> list[StepReply]:
        items = [
            BfclStepInput(
                messages=r.messages,
                tools=r.tools,
                style=self.style,
                reference={"text": r.reference.text, "tool_calls": r.reference.tool_calls},
            )
            for r in requests
        ]
        results = self.runner.run(self.task, items, max_tokens=self.max_tokens)
        out = []
        for res in results:
            if res.ok:
                out.append(StepReply(text=res.value.text, tool_calls=res.value.tool_calls))
            else:
                out.append(StepReply(error=res.reject_reason or "no answer"))
        return out


def keyword_calls(calls: Sequence[str], functions: Sequence[dict[str, Any]]) -> list[str]:
    """Ground-truth call strings with positional arguments named after the function doc's
    parameters, in order (BFCL's ground truth has a few, e.g. ``sort('report.pdf')``; its
    decoder keeps keyword arguments only, so a model must name them)."""
    import ast

    order = {f["name"]: list(f.get("parameters", {}).get("properties", {})) for f in functions}
    out = []
    for text in calls:
        try:
            node = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            out.append(text)
            continue
        if not isinstance(node, ast.Call) or not node.args:
            out.append(text)
            continue
        name = ast.unparse(node.func)
        params = order.get(name, [])
        if len(params) < len(node.args):
            out.append(text)
            continue
        args = [f"{p}={ast.unparse(a)}" for p, a in zip(params, node.args)] + [ast.unparse(k) for k in node.keywords]
        out.append(f"{name}({', '.join(args)})")
    return out


def reference_reply(calls: Sequence[str], style: str, functions: Sequence[dict[str, Any]] = ()) -> StepReply:
    """The ground-truth call strings of one step as a model would answer them (keyword arguments)."""
    if not calls:
        return StepReply(text="")
    calls = keyword_calls(calls, functions)
    if style == "prompting":
        return StepReply(text="[" + ", ".join(calls) + "]")
    decoded = require().handler_utils.default_decode_ast_prompting("[" + ", ".join(calls) + "]")
    return StepReply(tool_calls=[{"name": name, "arguments": args} for d in decoded for name, args in d.items()])


def _choice(choices: list[Any], required: bool = False) -> tuple[bool, Any]:
    """(use it, value): one value a possible answer allows; an optional parameter ("" among
    its choices) is left out unless the doc requires it."""
    values = [c for c in choices if c != ""]
    if not values or ("" in choices and not required):
        return False, None
    value = values[0]
    if isinstance(value, dict):
        value = {k: v for k, (use, v) in ((k, _choice(vs)) for k, vs in value.items()) if use}
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        value = [{k: v for k, (use, v) in ((k, _choice(vs)) for k, vs in d.items()) if use} for d in value]
    return True, value


def single_turn_reference(entry: dict[str, Any], style: str) -> StepReply:
    """An answer BFCL's possible_answer accepts: every required parameter at its first
    allowed value, optional ones left out (nested dicts alike)."""
    if "ground_truth" not in entry:  # irrelevance: no call
        return StepReply(text="None of the given functions can answer this question.")
    required = {f["name"]: set(f.get("parameters", {}).get("required", [])) for f in entry.get("function", [])}
    calls = []
    for expected in entry["ground_truth"]:
        for name, params in expected.items():
            need = required.get(name, set())
            args = {param: value for param, (use, value) in ((p, _choice(c, p in need)) for p, c in params.items()) if use}
            calls.append((name, args))
    if style == "prompting":
        return StepReply(text="[" + ", ".join(f"{n}(" + ", ".join(f"{k}={v!r}" for k, v in a.items()) + ")" for n, a in calls) + "]")
    return StepReply(tool_calls=[{"name": re.sub(r"\.", "_", n), "arguments": a} for n, a in calls])


# --------------------------------------------------------------------------- BFCL's prompt pieces


def openai_tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BFCL's function docs as OpenAI tools, by BFCL's own conversion ('.' -> '_' in names)."""
    b = _bfcl()
    return b.handler_utils.convert_to_tool(functions, b.type_mappings.GORILLA_TO_OPENAPI, b.enums.ModelStyle.OPENAI_COMPLETIONS)


def first_messages(entry: dict[str, Any], style: str) -> list[dict[str, Any]]:
    """The messages of the first turn: with BFCL's system prompt (function docs in it) for a
    prompting model; as they are for a native one (the docs go as tools)."""
    b = _bfcl()
    first = copy.deepcopy(entry["question"][0])
    if style == "prompting":
        first = b.handler_utils.system_prompt_pre_processing_chat_model(first, entry["function"], entry["id"])
    return first


def decode_execute(reply: StepReply, style: str) -> list[str]:
    """The reply's calls as executable call strings (BFCL's decoders); raises when it does not decode."""
    b = _bfcl()
    if style == "fc":
        return b.handler_utils.convert_to_function_call([{c["name"]: c["arguments"]} for c in reply.tool_calls])
    return b.handler_utils.default_decode_execute_prompting(reply.text)


def decode_ast(reply: StepReply, style: str) -> list[dict[str, dict[str, Any]]]:
    b = _bfcl()
    if style == "fc":
        if not reply.tool_calls:
            raise ValueError("no tool call in the reply")
        return [{c["name"]: c["arguments"]} for c in reply.tool_calls]
    return b.handler_utils.default_decode_ast_prompting(reply.text)


# --------------------------------------------------------------------------- results


@dataclass
class EntryResult:
    id: str
    category: str
    valid: bool
    error_type: str | None = None
    error: str | None = None
    #: multi-turn: the executed calls per turn and step; single-turn: the decoded calls
    decoded: Any = None
    raw: Any = None
    steps: int = 0


@dataclass
class BfclReport:
    model: str
    style: str
    entries: list[EntryResult]
    categories: list[str]
    bfcl_version: str = ""
    notes: list[str] = field(default_factory=list)

    def accuracy(self, category: str) -> float | None:
        mine = [e for e in self.entries if e.category == category]
        return sum(e.valid for e in mine) / len(mine) if mine else None

    def counts(self, category: str) -> int:
        return sum(e.category == category for e in self.entries)

    def scores(self) -> dict[str, Any]:
        """Per category accuracy, BFCL's group summaries and its overall."""
        per = {c: self.accuracy(c) for c in self.categories if self.counts(c)}

        def mean(cats: Sequence[str]) -> float | None:
            vals = [per[c] for c in cats if c in per]
            return sum(vals) / len(vals) if vals else None

        groups = {"non_live": mean(AST_CATEGORIES), "irrelevance": mean(RELEVANCE), "multi_turn": mean(MULTI_TURN)}
        present = {g: v for g, v in groups.items() if v is not None}
        weight = sum(GROUP_WEIGHTS[g] for g in present)
        overall = sum(GROUP_WEIGHTS[g] * v for g, v in present.items()) / weight if weight else None
        return {"categories": per, "groups": groups, "overall": overall, "n": {c: self.counts(c) for c in per}}

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "style": self.style,
            "bfcl_eval": self.bfcl_version,
            "notes": self.notes,
            **self.scores(),
            "failures": [asdict(e) for e in self.entries if not e.valid],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False, default=str)

    def markdown(self) -> str:
        s = self.scores()
        fmt = lambda v: "-" if v is None else f"{v:.3f}"
        lines = [
            f"# BFCL evaluation: {self.model} ({self.style})",
            "",
            f"bfcl-eval {self.bfcl_version}; BFCL's data, protocol and checkers; {len(self.entries)} entries.",
            "",
            *[f"> {n}" for n in self.notes],
            *([""] if self.notes else []),
            "| category | n | accuracy |",
            "|---|---|---|",
            *[f"| {c} | {s['n'][c]} | {fmt(v)} |" for c, v in s["categories"].items()],
            "",
            "| group | accuracy |",
            "|---|---|",
            *[f"| {g} | {fmt(v)} |" for g, v in s["groups"].items() if v is not None],
            f"| **overall** | **{fmt(s['overall'])}** |",
        ]
        failed = [e for e in self.entries if not e.valid]
        if failed:
            lines += ["", "## Failed entries", "", "| id | error type | reason |", "|---|---|---|"]
            lines += [f"| {e.id} | {e.error_type} | {(e.error or '').replace('|', '/')[:200]} |" for e in failed[:50]]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- multi-turn


@dataclass
class _Conversation:
    entry: dict[str, Any]
    category: str
    functions: list[dict[str, Any]]
    messages: list[dict[str, Any]] = field(default_factory=list)
    turn: int = -1
    step: int = 0
    results: list[list[Any]] = field(default_factory=list)  # per turn, per step: the raw reply
    decoded: list[list[list[str]]] = field(default_factory=list)  # per turn: the executed steps
    failure: tuple[str, str] | None = None  # (error type, reason)
    done: bool = False
    steps: int = 0

    @property
    def id(self) -> str:
        return self.entry["id"]


class MultiTurnRun:
    """The multi-turn categories with one backend, BFCL's inference loop over all entries at once."""

    def __init__(self, backend: Backend, entries: Sequence[dict[str, Any]], *, max_steps: int | None = None):
        self.b = require()
        self.backend = backend
        self.style = backend.style
        self.max_steps = self.b.prompts.MAXIMUM_STEP_LIMIT if max_steps is None else max_steps
        #: the instances BFCL's executor keeps in its module globals are named after this
        self.token = f"magnet_{uuid.uuid4().hex[:10]}"
        self.convs = [_Conversation(entry=copy.deepcopy(e), category=e["id"].rsplit("_", 1)[0], functions=[]) for e in entries]

    # ------------------------------------------------------------------ one conversation
    def _long_context(self, c: _Conversation) -> bool:
        return "long_context" in c.category or "composite" in c.category

    def _execute(self, c: _Conversation, calls: list[str]) -> list[str]:
        results, _ = self.b.mt_utils.execute_multi_turn_func_call(
            calls,
            c.entry.get("initial_config", {}),
            c.entry["involved_classes"],
            self.token,
            c.id,
            long_context=self._long_context(c),
            is_evaL_run=False,
        )
        return results

    def _start(self, c: _Conversation) -> None:
        c.functions = copy.deepcopy(c.entry["function"])
        self._execute(c, [])  # load the classes from initial_config (fails here if one does not load)
        c.messages = []

    def _next_turn(self, c: _Conversation) -> None:
        """Open the next turn (adding held-out functions at their turn), or finish."""
        c.turn += 1
        c.step = 0
        questions = c.entry["question"]
        if c.turn >= len(questions):
            c.done = True
            return
        message = copy.deepcopy(questions[c.turn])
        held_out = c.entry.get("missed_function", {}).get(str(c.turn))
        if held_out is not None:
            if self.style == "prompting":
                text = self.b.prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING.format(functions=held_out)
            else:
                c.functions.extend(held_out)
                text = self.b.prompts.DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC
            message = [{"role": "user", "content": text}]
        if c.turn == 0 and self.style == "prompting":
            entry = {**c.entry, "question": [message], "function": c.functions}
            message = first_messages(entry, "prompting")
        c.messages.extend(message)
        c.results.append([])
        c.decoded.append([])

    def _request(self, c: _Conversation) -> StepRequest:
        truth = c.entry["ground_truth"][c.turn] if c.turn < len(c.entry["ground_truth"]) else []
        every = [*c.entry["function"], *(f for fs in c.entry.get("missed_function", {}).values() for f in fs)]
        reference = reference_reply(truth if c.step == 0 else [], self.style, every)
        tools = openai_tools(c.functions) if self.style == "fc" else []
        return StepRequest(entry_id=c.id, messages=copy.deepcopy(c.messages), tools=tools, reference=reference)

    def _fail(self, c: _Conversation, kind: str, reason: str) -> None:
        c.failure, c.done = (kind, reason), True

    def _step(self, c: _Conversation, reply: StepReply) -> None:
        """Take one response: record it, decode it, execute its calls or end the turn."""
        c.steps += 1
        if reply.error is not None:
            self._fail(c, "multi_turn:no_answer", reply.error)
            return
        c.results[-1].append(reply.tool_calls if self.style == "fc" else reply.text)
        call_ids = [f"call_{c.turn}_{c.step}_{j}" for j in range(len(reply.tool_calls))]
        if self.style == "fc":
            assistant: dict[str, Any] = {"role": "assistant", "content": reply.text or ""}
            if reply.tool_calls:
                assistant["tool_calls"] = [
                    {
                        "id": i,
                        "type": "function",
                        "function": {"name": t["name"], "arguments": json.dumps(t["arguments"], ensure_ascii=False)},
                    }
                    for t, i in zip(reply.tool_calls, call_ids)
                ]
        else:
            assistant = {"role": "assistant", "content": reply.text}
        c.messages.append(assistant)
        try:
            calls = decode_execute(reply, self.style)
        except Exception:  # BFCL: a reply that does not decode ends the turn
            calls = []
        if self.b.mt_utils.is_empty_execute_response(calls):
            self._next_turn(c)
            return
        results = self._execute(c, calls)
        c.decoded[-1].append(calls)
        if self.style == "fc":
            c.messages.extend({"role": "tool", "content": r, "tool_call_id": i} for r, i in zip(results, call_ids))
        elif self.backend.results_as == "tool":
            c.messages.extend({"role": "tool", "name": d, "content": r} for r, d in zip(results, calls))
        else:
            tool_results = [{"role": "tool", "name": d, "content": r} for r, d in zip(results, calls)]
            c.messages.append({"role": "user", "content": repr(tool_results)})
        c.step += 1
        if c.step > self.max_steps:
            self._fail(c, "multi_turn:force_terminated", f"forced to quit after {self.max_steps} steps in turn {c.turn}")

    # ------------------------------------------------------------------ the run
    def run(self, progress: Callable[[int, int], None] | None = None) -> list[EntryResult]:
        try:
            for c in self.convs:
                try:
                    self._start(c)
                    self._next_turn(c)
                except Exception as exc:
                    self._fail(c, "multi_turn:class_load_error", f"the entry's classes did not load: {type(exc).__name__}: {exc}")
            while live := [c for c in self.convs if not c.done]:
                requests = [self._request(c) for c in live]
                try:
                    replies = self.backend.respond(requests)
                except Exception as exc:  # a backend that crashes fails this step's entries, not the run
                    replies = [StepReply(error=f"the model failed: {type(exc).__name__}: {str(exc)[:200]}") for _ in live]
                for c, reply in zip(live, replies):
                    try:
                        self._step(c, reply)
                    except Exception as exc:
                        self._fail(c, "multi_turn:execution_error", f"{type(exc).__name__}: {exc}")
                if progress:
                    progress(sum(c.done for c in self.convs), len(self.convs))
            return [self._score(c) for c in self.convs]
        finally:
            self._forget()

    def _score(self, c: _Conversation) -> EntryResult:
        result = EntryResult(id=c.id, category=c.category, valid=False, decoded=c.decoded, raw=c.results, steps=c.steps)
        if c.failure is not None:
            result.error_type, result.error = c.failure
            return result
        truth = c.entry["ground_truth"]
        if len(c.decoded) != len(truth):
            result.error_type = "multi_turn:force_terminated"
            result.error = f"{len(c.decoded)} turns answered, {len(truth)} expected"
            return result
        entry = {k: v for k, v in c.entry.items() if k != "function"}
        try:
            verdict = self.b.mt_checker.multi_turn_checker(c.decoded, truth, entry, c.category, self.token)
        except Exception as exc:
            result.error_type, result.error = "multi_turn:checker_error", f"{type(exc).__name__}: {exc}"
            return result
        result.valid = bool(verdict.get("valid"))
        if not result.valid:
            result.error_type = verdict.get("error_type")
            result.error = str(verdict.get("error_message"))
        return result

    def _forget(self) -> None:
        """Drop the class instances BFCL's executor keeps in its module globals for this run."""
        g = vars(self.b.mt_utils)
        for key in [k for k in g if k.startswith(self.token)]:
            del g[key]


# --------------------------------------------------------------------------- single-turn


def single_turn(backend: Backend, entries: Sequence[dict[str, Any]]) -> list[EntryResult]:
    """One response per entry, scored by BFCL's AST checker (irrelevance: no decodable call)."""
    b = require()
    style = backend.style
    requests = []
    for e in entries:
        messages = first_messages(e, style)
        tools = openai_tools(e["function"]) if style == "fc" else []
        requests.append(StepRequest(entry_id=e["id"], messages=messages, tools=tools, reference=single_turn_reference(e, style)))
    try:
        replies = backend.respond(requests)
    except Exception as exc:
        replies = [StepReply(error=f"the model failed: {type(exc).__name__}: {str(exc)[:200]}") for _ in requests]
    out = []
    for e, reply in zip(entries, replies):
        category = e["id"].rsplit("_", 1)[0]
        raw = reply.tool_calls if style == "fc" else reply.text
        result = EntryResult(id=e["id"], category=category, valid=False, raw=raw, steps=1)
        out.append(result)
        if reply.error is not None:
            result.error_type, result.error = "no_answer", reply.error
            continue
        try:
            decoded = decode_ast(reply, style)
            has_call = not b.utils.is_empty_output(decoded)
        except Exception as exc:
            decoded, has_call, decode_error = None, False, f"{type(exc).__name__}: {exc}"
        else:
            decode_error = None
        result.decoded = decoded
        if category in RELEVANCE:
            result.valid = not has_call
            if has_call:
                result.error_type, result.error = "irrelevance_error:decoder_success", "a function was called when none applies"
            continue
        if decoded is None:
            result.error_type, result.error = "ast_decoder:decoder_failed", f"the answer does not decode: {decode_error}"
            continue
        if not b.utils.is_function_calling_format_output(decoded):
            result.error_type, result.error = "ast_decoder:decoder_wrong_output_format", "the answer is not a list of calls"
            continue
        try:
            verdict = b.ast_checker.ast_checker(
                e["function"], decoded, e["ground_truth"], b.enums.Language.PYTHON, category, _CHECKER_MODEL[style]
            )
        except Exception as exc:
            result.error_type, result.error = "ast_checker_error", f"{type(exc).__name__}: {exc}"
            continue
        result.valid = bool(verdict["valid"])
        if not result.valid:
            result.error_type, result.error = verdict.get("error_type"), "; ".join(map(str, verdict.get("error", [])))
    return out


# --------------------------------------------------------------------------- the whole evaluation


def evaluate(
    backend: Backend,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    limit: int | None = None,
    *,
    max_steps: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BfclReport:
    """Every category with one backend; ``limit`` entries per category (None = all)."""
    unknown = [c for c in categories if c not in DEFAULT_CATEGORIES]
    if unknown:
        raise ValueError(f"unsupported BFCL categories: {', '.join(unknown)}; choose from {', '.join(DEFAULT_CATEGORIES)}")
    results: list[EntryResult] = []
    notes: list[str] = []
    for category in categories:
        try:
            entries = load_entries(category, limit)
        except Exception as exc:
            notes.append(f"{category}: not evaluated, its entries did not load ({type(exc).__name__}: {exc})")
            continue
        if category in MULTI_TURN:
            run = MultiTurnRun(backend, entries, max_steps=max_steps)
            results.extend(run.run(progress=(lambda d, n, c=category: progress(c, d, n)) if progress else None))
        else:
            results.extend(single_turn(backend, entries))
            if progress:
                progress(category, len(entries), len(entries))
    if limit is not None:
        notes.append(f"the first {limit} entries of each category (BFCL's full sets are larger): a subset, not the leaderboard's numbers")
    return BfclReport(
        model=backend.name,
        style=backend.style,
        entries=results,
        categories=[c for c in categories],
        bfcl_version=version(),
        notes=notes,
    )


def scores_table(reports: Sequence[BfclReport]) -> list[list[str]]:
    """Rows of category | n | one accuracy per model, then the groups and the overall."""
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    scores = [r.scores() for r in reports]
    cats = [c for c in DEFAULT_CATEGORIES if any(c in s["categories"] for s in scores)]
    rows = [[c, str(max(s["n"].get(c, 0) for s in scores)), *[fmt(s["categories"].get(c)) for s in scores]] for c in cats]
    for group in GROUP_WEIGHTS:
        if any(s["groups"][group] is not None for s in scores):
            rows.append([f"{group} (group)", "", *[fmt(s["groups"][group]) for s in scores]])
    rows.append(["overall", "", *[fmt(s["overall"]) for s in scores]])
    return rows


def combined_markdown(reports: Sequence[BfclReport]) -> str:
    names = [f"{r.model} ({r.style})" for r in reports]
    notes = sorted({n for r in reports for n in r.notes})
    lines = [
        "# BFCL evaluation",
        "",
        f"bfcl-eval {version()}: BFCL's entries, system prompt, function docs, executable classes and checkers. "
        "Groups and overall aggregated as BFCL's leaderboard does (multi-turn and non-live AST: unweighted means of their "
        "categories; overall: BFCL's weights non-live 10 / irrelevance 10 / multi-turn 30, renormalised over the groups run).",
        "",
        *[f"> {n}" for n in notes],
        *([""] if notes else []),
        "| category | n | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
        *["| " + " | ".join(row) + " |" for row in scores_table(reports)],
    ]
    for r in reports:
        failed = [e for e in r.entries if not e.valid]
        if failed:
            lines += ["", f"## Failed entries of {r.model} ({len(failed)}, first 30)", "", "| id | error type | reason |", "|---|---|---|"]
            lines += [f"| {e.id} | {e.error_type} | {(e.error or '').replace('|', '/').replace(chr(10), ' ')[:200]} |" for e in failed[:30]]
    return "\n".join(lines) + "\n"


def write_report(reports: BfclReport | Sequence[BfclReport], out_dir: Path, *, limit: int | None = None) -> tuple[Path, Path]:
    """``bfcl_scores.json`` (per model: scores and every failed entry with its reason; ``scores``
    maps model -> category -> accuracy) and ``bfcl_scores.md`` in ``out_dir``."""
    reports = [reports] if isinstance(reports, BfclReport) else list(reports)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "bfcl_scores.json", out_dir / "bfcl_scores.md"
    payload = {
        "bfcl_eval": version(),
        "limit": limit,
        "scores": {r.model: {**r.scores()["categories"], "overall": r.scores()["overall"]} for r in reports},
        "models": [r.as_dict() for r in reports],
    }
    js.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    md.write_text(combined_markdown(reports), encoding="utf-8")
    return js, md


__all__ = [
    "AST_CATEGORIES",
    "DEFAULT_CATEGORIES",
    "MULTI_TURN",
    "SINGLE_TURN",
    "Backend",
    "BfclReport",
    "BfclUnavailable",
    "EntryResult",
    "MultiTurnRun",
    "BfclStepTask",
    "ReferenceBackend",
    "ServedBackend",
    "StepReply",
    "StepRequest",
    "TransformersBackend",
    "available",
    "evaluate",
    "load_entries",
    "multi_turn_paths",
    "single_turn",
    "unavailable_reason",
    "write_report",
]
