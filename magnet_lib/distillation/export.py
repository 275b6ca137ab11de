"""Exports of the SFT set: Hugging Face ``datasets``, ShareGPT (LLaMA-Factory) and BFCL.

- ``hf``: a ``DatasetDict`` saved with ``save_to_disk`` (``datasets.load_from_disk(DIR/dataset)``)
  with splits ``train`` and ``heldout``; columns ``messages`` (OpenAI chat messages, each
  stored as JSON; a call's ``function.arguments`` as an object, as Hugging Face chat
  templates expect, or as the OpenAI JSON string with ``arguments='string'``) and ``tools``
  (a JSON string of OpenAI function specs, which TRL's ``SFTTrainer`` decodes), plus the
  kind and the ids every row came from. Also ``train.jsonl`` / ``heldout.jsonl``.
- ``sharegpt``: LLaMA-Factory's ShareGPT layout with function calls:
  ``conversations`` of ``human`` / ``gpt`` / ``function_call`` / ``observation`` turns,
  ``system`` and ``tools`` columns, and a ``dataset_info.json`` that registers the files.
- ``bfcl``: BFCL v3's own layout and entry format, as bfcl-eval's loader and checkers read
  them: ``BFCL_v4_magnet_<category>_<split>.json`` (one entry a line; categories
  ``multi_turn``, ``simple``, ``multiple``, ``parallel``, ``parallel_multiple``,
  ``irrelevance``, by the item's shape as BFCL's checkers read it). A multi-turn
  entry has ``id``, ``question`` (a list of turns, each a list of messages),
  ``initial_config`` (per class: the episode's seed, from which a built-in world is made),
  ``involved_classes``, ``path``, ``excluded_function`` (the class's functions not offered)
  and ``missed_function`` (turn -> names of the functions added then); the function docs of
  each class, in BFCL's doc format (``"type": "dict"``), are in
  ``multi_turn_func_doc/<class>.json``. A single-turn entry has ``id``, ``question``,
  ``function``. Ground truth under ``possible_answer/`` in BFCL's format: ``ground_truth``
  call strings per turn (``f(a=1, b='x')``) for multi-turn, ``[{"f": {"a": [1]}}]`` for
  single-turn (none for irrelevance). The built-in categories' classes are executable by
  bfcl-eval's multi-turn checker after :func:`magnet_lib.evaluation.bfcl_classes.register`;
  spec-only categories get docs but no executable class.

Every format also gets ``report.md``, the data quality report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from magnet_lib.distillation.mixing import SFTExample
from magnet_lib.models import Call, Episode
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.tool_calls import decode_arguments, message_calls
from magnet_lib.training import chat_format as cf

ExportFormat = Literal["hf", "sharegpt", "bfcl"]
FORMATS: tuple[str, ...] = ("hf", "sharegpt", "bfcl")
_MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


# --------------------------------------------------------------------------- hf


def hf_message(message: dict[str, Any], arguments: str = "object") -> dict[str, Any]:
    """A message as chat templates read it: only the keys they use, no None content, and a
    call's arguments as an object (``arguments='object'``, what Hugging Face templates
    expect: they write them with ``tojson``) or as the OpenAI JSON string (``'string'``)."""
    out = {k: message[k] for k in _MESSAGE_KEYS if message.get(k) is not None}
    out["content"] = message.get("content") or ""
    if message.get("tool_calls"):
        calls = []
        for tc in message["tool_calls"]:
            fn = tc["function"]
            args = fn.get("arguments") or {}
            if arguments == "object":
                args = decode_arguments(args, fn["name"])
            elif arguments == "string" and not isinstance(args, str):
                args = json.dumps(args, ensure_ascii=False)
            calls.append({"id": tc.get("id"), "type": "function", "function": {"name": fn["name"], "arguments": args}})
        out["tool_calls"] = calls
    return out


def hf_record(row: SFTExample, arguments: str = "object") -> dict[str, Any]:
    """The row for TRL / HF chat templates: ``tools`` holds the functions, which the template
    renders, so the system message keeps only the instructions (no second copy as JSON)."""
    messages = [hf_message(m, arguments) for m in row.messages]
    for m in messages:
        if m["role"] == "system":
            m["content"] = cf.without_function_json(m["content"])
    return {
        "messages": messages,
        "tools": json.dumps(row.tools, ensure_ascii=False),
        "kind": row.kind,
        "category": row.category,
        "traj_id": row.traj_id,
        "episode_id": row.episode_id or "",
        "fsp_id": row.fsp_id or "",
        "parent_fsp_id": row.parent_fsp_id or "",
        "functions": list(row.functions),
        "tool_updates": json.dumps(row.tool_updates, ensure_ascii=False),
        "generator": row.generator,
    }


def hf_features():
    """Columns of the ``hf`` export; every message is stored as JSON (``datasets.Json``), so
    messages of any shape round-trip exactly, with no Arrow struct merging across rows."""
    from datasets import Features, Json, List, Value

    text = Value("string")
    return Features({
        "messages": List(Json()), "tools": text, "kind": text, "category": text, "traj_id": text, "episode_id": text,
        "fsp_id": text, "parent_fsp_id": text, "functions": List(text), "tool_updates": text, "generator": text,
    })  # fmt: skip


def export_hf(rows: Sequence[SFTExample], out: Path, arguments: str = "object") -> list[Path]:
    import datasets

    datasets.disable_progress_bars()  # a CLI prints its own summary
    out.mkdir(parents=True, exist_ok=True)
    written = []
    splits = {}
    for split in ("train", "heldout"):
        records = [hf_record(r, arguments) for r in rows if r.split == split]
        path = out / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        written.append(path)
        if records:  # an empty split saves but does not load back
            columns = {name: [r[name] for r in records] for name in hf_features()}
            splits[split] = datasets.Dataset.from_dict(columns, features=hf_features())
    datasets.DatasetDict(splits).save_to_disk(str(out / "dataset"))
    written.append(out / "dataset")
    return written


# --------------------------------------------------------------------------- sharegpt


def sharegpt_record(row: SFTExample) -> dict[str, Any]:
    """One conversation in LLaMA-Factory's ShareGPT format (odd turns human/observation,
    even turns gpt/function_call; parallel calls and their outputs as JSON lists)."""
    conversations: list[dict[str, str]] = []
    system = ""
    messages = list(row.messages)
    i = 0
    while i < len(messages):
        m = messages[i]
        role = m.get("role")
        if role == "system":
            system = m.get("content") or ""
        elif role == "user":
            conversations.append({"from": "human", "value": m.get("content") or ""})
        elif role == "assistant" and m.get("tool_calls"):
            calls = [{"name": c.name, "arguments": c.arguments} for c in message_calls(m)]
            conversations.append({"from": "function_call", "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)})
            outputs = []
            while i + 1 < len(messages) and messages[i + 1].get("role") == "tool":
                i += 1
                outputs.append(messages[i].get("content") or "")
            value = (
                outputs[0]
                if len(outputs) == 1
                else json.dumps([json.loads(o) if o.startswith(("{", "[")) else o for o in outputs], ensure_ascii=False)
            )
            conversations.append({"from": "observation", "value": value})
        elif role == "assistant":
            conversations.append({"from": "gpt", "value": m.get("content") or ""})
        i += 1
    return {
        "conversations": conversations,
        "system": system,
        "tools": json.dumps(cf.function_specs(row.tools), ensure_ascii=False),
        "kind": row.kind,
        "traj_id": row.traj_id,
    }


def export_sharegpt(rows: Sequence[SFTExample], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    info = {}
    for split in ("train", "heldout"):
        records = [sharegpt_record(r) for r in rows if r.split == split]
        path = out / f"magnet_{split}.json"
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
        written.append(path)
        info[f"magnet_{split}"] = {
            "file_name": path.name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        }
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    written.append(out / "dataset_info.json")
    return written


# --------------------------------------------------------------------------- bfcl

_BFCL_TYPES = {"object": "dict", "number": "float"}


def bfcl_schema(schema: Any) -> Any:
    """JSON Schema -> BFCL's dialect (``object`` -> ``dict``, ``number`` -> ``float``)."""
    if isinstance(schema, list):
        return [bfcl_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = _BFCL_TYPES.get(value, value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: bfcl_schema(sub) for name, sub in value.items()}
        else:
            out[key] = bfcl_schema(value)
    return out


def bfcl_doc(spec: dict[str, Any]) -> dict[str, Any]:
    fn = spec.get("function", spec)
    return {"name": fn["name"], "description": fn.get("description", ""), "parameters": bfcl_schema(fn.get("parameters", {}))}


#: BFCL's single-turn categories, by the number of functions offered and of calls made
BFCL_SINGLE_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")


def bfcl_category(row: SFTExample) -> str:
    """BFCL's category of an item by its shape, as its checkers read it: ``multi_turn``,
    ``irrelevance``, else ``simple`` (one function offered, one call), ``multiple`` (several
    offered, one call), ``parallel`` (one offered, several calls) or ``parallel_multiple``."""
    if row.kind in ("multi_turn", "irrelevance"):
        return row.kind
    calls = sum(len(m.get("tool_calls") or []) for m in row.messages)
    several = len(row.tools) > 1
    if calls > 1:
        return "parallel_multiple" if several else "parallel"
    return "multiple" if several else "simple"


def bfcl_class(category: str) -> str:
    """The BFCL class of a category: a built-in environment's class name (executable by
    bfcl-eval through :mod:`magnet_lib.evaluation.bfcl_classes`), else the category in
    CamelCase with 'API' (docs only)."""
    env = builtin_environments().get(category)
    return env.__name__ if env is not None else "".join(w.capitalize() for w in category.split("_")) + "API"


def _turns(row: SFTExample) -> tuple[list[list[dict[str, str]]], list[list[str]], dict[str, list[str]]]:
    """Questions per user turn (the note of functions added mid-conversation taken out), the
    call strings per turn, and the turn at which each added function arrives (BFCL's
    ``missed_function``: names)."""
    questions: list[list[dict[str, str]]] = []
    truth: list[list[str]] = []
    added_at: dict[int, int] = {u["message_index"]: k for k, u in enumerate(row.tool_updates)}
    missed: dict[str, list[str]] = {}
    for index, m in enumerate(row.messages):
        role = m.get("role")
        if role == "user":
            content = m.get("content") or ""
            if index in added_at:
                update = row.tool_updates[added_at[index]]
                missed[str(len(questions))] = [bfcl_doc(t)["name"] for t in update["tools"]]
                content = content.split("\n\n", 1)[1] if content.startswith(cf.TOOLS_ADDED_PREFIX) and "\n\n" in content else content
            questions.append([{"role": "user", "content": content}])
            truth.append([])
        elif role == "assistant" and truth:
            truth[-1].extend(c.to_python() for c in message_calls(m))
    return questions, truth, missed


def bfcl_multi_turn(row: SFTExample, entry_id: str, episode: Episode | None, class_functions: dict[str, list[str]]) -> tuple[dict, dict]:
    """A multi-turn item as BFCL v3 writes one: the entry (``question`` per turn,
    ``initial_config`` per class: the episode's seed, ``involved_classes``, ``path``,
    ``excluded_function``: the class's functions not offered, ``missed_function``) and its
    possible answer (``ground_truth``: call strings per turn). ``class_functions``: every
    function of each class (its doc file)."""
    questions, truth, missed = _turns(row)
    cls = bfcl_class(row.category)
    offered = {bfcl_doc(t)["name"] for t in row.tools} | {n for names in missed.values() for n in names}
    entry: dict[str, Any] = {
        "id": entry_id,
        "question": questions,
        "initial_config": {cls: {"seed": episode.seed} if episode is not None else {}},
        "path": [f"{cls}.{c.name}" for m in row.messages for c in message_calls(m)],
        "involved_classes": [cls],
    }
    if missed:
        entry["missed_function"] = missed
    excluded = [n for n in class_functions.get(cls, []) if n not in offered]
    if excluded:
        entry["excluded_function"] = excluded
    return entry, {"id": entry_id, "ground_truth": truth}


def bfcl_possible_answer(call: Call, spec: dict[str, Any] | None) -> dict[str, dict[str, list[Any]]]:
    """A call as BFCL's possible answer: ``{"func": {"arg": [value]}}``; an optional argument
    at its default may also be left out (``""``, as BFCL writes it)."""
    props = (spec or {}).get("parameters", {}).get("properties", {})
    required = set((spec or {}).get("parameters", {}).get("required", []))
    answer = {}
    for name, value in call.arguments.items():
        allowed = [value]
        if name not in required and "default" in props.get(name, {}) and props[name]["default"] == value:
            allowed.append("")
        answer[name] = allowed
    return {call.name: answer}


def bfcl_single_turn(row: SFTExample, entry_id: str) -> tuple[dict, dict | None]:
    """A single, parallel, multiple or irrelevance item as BFCL writes one: the entry (``id``,
    ``question``, ``function`` docs) and its possible answer (None for irrelevance, as in BFCL)."""
    questions, _, _ = _turns(row)
    docs = [bfcl_doc(t) for t in row.tools]
    entry = {"id": entry_id, "question": questions[:1], "function": docs}
    if row.kind == "irrelevance":
        return entry, None
    specs = {d["name"]: t.get("function", t) for d, t in zip(docs, row.tools)}
    calls = [c for m in row.messages for c in message_calls(m)]
    return entry, {"id": entry_id, "ground_truth": [bfcl_possible_answer(c, specs.get(c.name)) for c in calls]}


def bfcl_record(row: SFTExample, episode: Episode | None = None, entry_id: str | None = None) -> dict[str, Any]:
    """One item as its BFCL entry with its possible answer's ``ground_truth`` beside it."""
    entry_id = entry_id or row.traj_id
    if row.kind == "multi_turn":
        entry, answer = bfcl_multi_turn(row, entry_id, episode, {})
    else:
        entry, answer = bfcl_single_turn(row, entry_id)
    return {**entry, "ground_truth": answer["ground_truth"] if answer else []}


def _jsonl(path: Path, records: Iterable[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def export_bfcl(rows: Sequence[SFTExample], out: Path, episodes: Sequence[Episode] = ()) -> list[Path]:
    """BFCL's own layout: ``BFCL_v4_magnet_<category>_<split>.json`` (one entry per line),
    the same names under ``possible_answer/``, the function docs of every class under
    ``multi_turn_func_doc/<class>.json``, and ``magnet_ids.json`` (entry id -> traj_id).
    Categories: multi_turn and BFCL's single-turn ones by shape (:func:`bfcl_category`)."""
    out.mkdir(parents=True, exist_ok=True)
    by_episode = {e.episode_id: e for e in episodes}
    docs: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r.kind == "multi_turn":
            env = builtin_environments().get(r.category)
            specs = (
                [t.openai_spec() for t in env.tools()] if env is not None else [*r.tools, *(t for u in r.tool_updates for t in u["tools"])]
            )
            docs.setdefault(bfcl_class(r.category), {}).update({bfcl_doc(s)["name"]: bfcl_doc(s) for s in specs})
    written = [_jsonl(out / "multi_turn_func_doc" / f"{cls}.json", d.values()) for cls, d in sorted(docs.items())]
    class_functions = {cls: list(d) for cls, d in docs.items()}
    ids: dict[str, str] = {}
    for split in ("train", "heldout"):
        for kind in ("multi_turn", *BFCL_SINGLE_CATEGORIES):
            chosen = [r for r in rows if r.split == split and bfcl_category(r) == kind]
            if not chosen:
                continue
            category = f"magnet_{kind}_{split}"
            entries, answers = [], []
            for i, r in enumerate(chosen):
                entry_id = f"{category}_{i}"
                ids[entry_id] = r.traj_id
                if kind == "multi_turn":
                    entry, answer = bfcl_multi_turn(r, entry_id, by_episode.get(r.episode_id or ""), class_functions)
                else:
                    entry, answer = bfcl_single_turn(r, entry_id)
                entries.append(entry)
                if answer is not None:
                    answers.append(answer)
            written.append(_jsonl(out / f"BFCL_v4_{category}.json", entries))
            if answers:
                written.append(_jsonl(out / "possible_answer" / f"BFCL_v4_{category}.json", answers))
    (out / "magnet_ids.json").write_text(json.dumps(ids, indent=1), encoding="utf-8")
    written.append(out / "magnet_ids.json")
    return written


def export(
    rows: Iterable[SFTExample],
    fmt: str,
    out: Path,
    report_markdown: str | None = None,
    arguments: str = "object",
    episodes: Sequence[Episode] = (),
) -> list[Path]:
    """Write the rows in ``fmt`` under ``out`` (and ``report.md`` when a report is given).
    ``arguments`` (hf only): tool-call arguments as objects or as OpenAI JSON strings;
    ``episodes`` (bfcl only): the translated episodes, whose seeds are the entries' initial state."""
    rows = list(rows)
    out = Path(out)
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if arguments not in ("object", "string"):
        raise ValueError(f"arguments must be 'object' or 'string', got '{arguments}'")
    if fmt == "hf":
        written = export_hf(rows, out, arguments)
    elif fmt == "sharegpt":
        written = export_sharegpt(rows, out)
    else:
        written = export_bfcl(rows, out, episodes)
    if report_markdown is not None:
        (out / "report.md").write_text(report_markdown, encoding="utf-8")
        written.append(out / "report.md")
    return written
