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
- ``bfcl``: the BFCL-v3 style: per item the user turns (``question``), the function docs in
  BFCL's schema dialect (``"type": "dict"``), and the ground truth as call strings per turn
  (``f(a=1, b='x')``); multi-turn items list the functions added later under
  ``missed_function`` (as BFCL's miss-func category does).

Every format also gets ``report.md``, the data quality report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from magnet_lib.distillation.mixing import SFTExample
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


def bfcl_record(row: SFTExample) -> dict[str, Any]:
    """Questions per user turn and the ground-truth call strings per turn."""
    questions: list[list[dict[str, str]]] = []
    truth: list[list[str]] = []
    added_at: dict[int, int] = {u["message_index"]: k for k, u in enumerate(row.tool_updates)}
    missed: dict[str, list[dict[str, Any]]] = {}
    for index, m in enumerate(row.messages):
        role = m.get("role")
        if role == "user":
            content = m.get("content") or ""
            if index in added_at:
                update = row.tool_updates[added_at[index]]
                missed[str(len(questions))] = [bfcl_doc(t) for t in update["tools"]]
                content = content.split("\n\n", 1)[1] if content.startswith(cf.TOOLS_ADDED_PREFIX) and "\n\n" in content else content
            questions.append([{"role": "user", "content": content}])
            truth.append([])
        elif role == "assistant" and truth:
            truth[-1].extend(c.to_python() for c in message_calls(m))
    record: dict[str, Any] = {
        "id": row.traj_id,
        "kind": row.kind,
        "question": questions,
        "function": [bfcl_doc(t) for t in row.tools],
        "ground_truth": truth if row.kind == "multi_turn" else (truth[0] if truth else []),
    }
    if missed:
        record["missed_function"] = missed
    return record


def export_bfcl(rows: Sequence[SFTExample], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in ("train", "heldout"):
        for group, kinds in (("multi_turn", {"multi_turn"}), ("single_turn", {"single", "parallel", "multiple", "irrelevance"})):
            records = [bfcl_record(r) for r in rows if r.split == split and r.kind in kinds]
            if not records:
                continue
            path = out / f"{group}_{split}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
            written.append(path)
    return written


def export(rows: Iterable[SFTExample], fmt: str, out: Path, report_markdown: str | None = None, arguments: str = "object") -> list[Path]:
    """Write the rows in ``fmt`` under ``out`` (and ``report.md`` when a report is given).
    ``arguments`` (hf only): tool-call arguments as objects or as OpenAI JSON strings."""
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
        written = export_bfcl(rows, out)
    if report_markdown is not None:
        (out / "report.md").write_text(report_markdown, encoding="utf-8")
        written.append(out / "report.md")
    return written
