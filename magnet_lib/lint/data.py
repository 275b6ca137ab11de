"""Any tool-use dataset as lint items: conversations in OpenAI chat form and preference pairs.

Reads what Magnet writes (the ``sft_set`` and ``mdpo_pairs`` tables, the HF, ShareGPT and
JSONL exports) and what other tools write in the same shapes: a record with ``messages``
(or ``conversations``) and ``tools``; a pair with ``prompt``, ``chosen`` and ``rejected``.
Nothing here needs Magnet's own models, so data made elsewhere lints the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a user message that only hands the assistant more functions (a miss_func follow-up)
_TOOL_UPDATE = re.compile(r"^\s*I have made more functions available", re.I)


def _json(value: Any, default: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return default
    return default if value is None else value


def call_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an OpenAI tool call, whether stored as an object or a JSON string."""
    fn = call.get("function", call)
    args = _json(fn.get("arguments"), {})
    return args if isinstance(args, dict) else {}


def call_name(call: dict[str, Any]) -> str:
    return str(call.get("function", call).get("name", ""))


def tool_specs(tools: Any) -> list[dict[str, Any]]:
    """Function specs ({name, description, parameters}) from OpenAI ``tools`` or bare specs."""
    out = []
    for t in _json(tools, []) or []:
        if isinstance(t, dict):
            out.append(t.get("function", t))
    return out


_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "observation": "tool", "function_call": "assistant", "system": "system"}


def _sharegpt_messages(conversations: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for turn in conversations:
        role = _SHAREGPT_ROLES.get(turn.get("from", ""), turn.get("from", "user"))
        value = turn.get("value", "")
        if turn.get("from") == "function_call":
            calls = _json(value, [])
            calls = calls if isinstance(calls, list) else [calls]
            messages.append({"role": "assistant", "content": "", "tool_calls": [{"function": c} for c in calls]})
        else:
            messages.append({"role": role, "content": value})
    return messages


def _messages(value: Any) -> list[dict[str, Any]]:
    msgs = _json(value, [])
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


@dataclass
class Turn:
    """One user request and what followed it up to the next request."""

    query: str
    messages: list[dict[str, Any]]
    #: (round, call) for every call; round = how many tool results came before it in the turn
    calls: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: (round, parsed output) per tool message, round = the round of the call it answers
    outputs: list[tuple[int, Any]] = field(default_factory=list)
    summary: str = ""


@dataclass
class Item:
    item_id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    kind: str = ""
    split: str = ""
    episode_id: str = ""
    #: the pool functions the item was made from, when the data says (Magnet's ``functions``)
    functions: list[str] = field(default_factory=list)
    #: the tool category, when the data says (Magnet's ``category``)
    category: str = ""
    #: what several rules read, derived once (:meth:`turns`, ``rules.traced_arguments``; read-only)
    derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def system(self) -> str:
        return "\n".join(str(m.get("content") or "") for m in self.messages if m.get("role") == "system")

    @property
    def descriptions(self) -> dict[str, str]:
        specs = {t.get("name", ""): str(t.get("description", "")) for t in self.tools}
        for m in self.messages:  # functions handed over later (a miss_func follow-up)
            if m.get("role") == "user" and _TOOL_UPDATE.match(str(m.get("content") or "")):
                found = re.search(r"\[.*\]", str(m.get("content")), re.S)
                for spec in _json(found.group(0) if found else None, []) or []:
                    if isinstance(spec, dict) and spec.get("name"):
                        specs.setdefault(spec["name"], str(spec.get("description", "")))
        return specs

    def turns(self) -> list[Turn]:
        if "turns" not in self.derived:
            self.derived["turns"] = self._split_turns()
        return self.derived["turns"]

    def _split_turns(self) -> list[Turn]:
        turns: list[Turn] = []
        rounds = 0
        pending: dict[str, int] = {}
        for m in self.messages:
            role, content = m.get("role"), m.get("content")
            if role == "user" and not _TOOL_UPDATE.match(str(content or "")):
                turns.append(Turn(query=str(content or ""), messages=[m]))
                rounds = 0
                continue
            if not turns or role == "system":
                continue
            turn = turns[-1]
            turn.messages.append(m)
            if role == "assistant":
                for c in m.get("tool_calls") or []:
                    turn.calls.append((rounds, c))
                    pending[str(c.get("id", len(turn.calls)))] = rounds
                if content and not m.get("tool_calls"):
                    turn.summary = str(content)
            elif role == "tool":
                turn.outputs.append((pending.get(str(m.get("tool_call_id")), rounds), _json(content, content)))
                rounds = max(rounds, pending.get(str(m.get("tool_call_id")), rounds) + 1)
        return turns


@dataclass
class Pair:
    pair_id: str
    prompt: list[dict[str, Any]]
    chosen: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    episode_id: str = ""
    traj_id: str = ""
    error_type: Any = None
    tools: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Dataset:
    items: list[Item] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    #: names of every function of the pool, when known; else the functions the items offer
    pool: list[str] | None = None

    def pool_functions(self) -> set[str]:
        if self.pool is not None:
            return set(self.pool)
        return {t.get("name", "") for item in self.items for t in item.tools} - {""}


def record_to_entry(record: dict[str, Any], index: int = 0) -> Item | Pair | None:
    """One row of any supported shape as an Item or a Pair (None when it is neither)."""
    rid = str(record.get("traj_id") or record.get("pair_id") or record.get("id") or index)
    if "chosen" in record and "rejected" in record:
        return Pair(
            pair_id=rid,
            prompt=_messages(record.get("prompt")),
            chosen=_messages(record.get("chosen")),
            rejected=_messages(record.get("rejected")),
            episode_id=str(record.get("episode_id") or ""),
            traj_id=str(record.get("traj_id") or ""),
            error_type=record.get("error_type"),
            tools=tool_specs(record.get("tools")),
        )
    if "messages" in record:
        messages = _messages(record["messages"])
    elif "conversations" in record:
        messages = _sharegpt_messages(_messages(record["conversations"]), record.get("system"))
    else:
        return None
    return Item(
        item_id=rid,
        messages=messages,
        tools=tool_specs(record.get("tools")),
        kind=str(record.get("kind") or ""),
        split=str(record.get("split") or ""),
        episode_id=str(record.get("episode_id") or ""),
        functions=[str(f) for f in _json(record.get("functions"), []) or []],
        category=str(record.get("category") or ""),
    )


def from_records(records: Iterable[dict[str, Any]], dataset: Dataset | None = None) -> Dataset:
    dataset = dataset or Dataset()
    for i, record in enumerate(records):
        entry = record_to_entry(record, i)
        if isinstance(entry, Item):
            dataset.items.append(entry)
        elif isinstance(entry, Pair):
            dataset.pairs.append(entry)
    return dataset


def _file_records(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".parquet":
        import polars as pl

        yield from pl.read_parquet(path).iter_rows(named=True)
    elif path.suffix == ".jsonl":
        with path.open() as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)
    elif path.suffix == ".json":
        data = json.loads(path.read_text())
        yield from (data if isinstance(data, list) else [data])


def load(paths: Iterable[Path | str]) -> Dataset:
    """A dataset from files or folders: parquet, JSONL or JSON files, a folder of them (searched
    recursively) or a Hugging Face ``save_to_disk`` folder. Items and pairs may be mixed."""
    dataset = Dataset()
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file() and any(path.glob("*.arrow")):
            import datasets

            loaded = datasets.load_from_disk(str(path))
            parts = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
            for part in parts:
                from_records(part, dataset)
            continue
        files = sorted(p for p in path.rglob("*") if p.suffix in (".parquet", ".jsonl", ".json")) if path.is_dir() else [path]
        for f in files:
            if f.name in ("dataset_info.json", "dataset_dict.json", "state.json"):
                continue
            from_records(_file_records(f), dataset)
    return dataset
