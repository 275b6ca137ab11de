"""Contamination of our data with BFCL's multi-turn test set (paper section 4: 0.3% of the FSPs
match a BFCL ground-truth path exactly, 5.3% share a 2-gram with one).

An item's **path** is the sequence of functions its assistant messages call, in order (for a
multi-turn item, the executed function signature path). BFCL's paths are the functions each
multi-turn entry's ground truth calls, over the four multi-turn categories (from bfcl-eval).
Names are compared without a class prefix, in lower case.

Per item: ``exact_match`` (its path equals a BFCL path; the first such entry in
``matched_entry``), ``shared_bigrams`` (its consecutive function pairs that occur in some
BFCL path) and ``bigram_overlap`` (their share of its pairs). ``flagged`` follows the
setting ``bfcl.drop_contaminated``: ``exact`` flags exact matches, ``ngram`` also items
sharing a 2-gram; with either, :func:`drop_contaminated` takes the flagged items out of ``sft_set``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from magnet_lib.evaluation import bfcl
from magnet_lib.pool.bfcl_source import name_mapping

DROP_MODES = ("none", "exact", "ngram")


def normalise(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip().lower()


def item_path(messages: Sequence[dict[str, Any]], aliases: dict[str, str] | None = None) -> list[str]:
    """The functions an item's assistant messages call, in order; ``aliases`` maps a pool name
    back to the BFCL function it was renamed from (the BFCL tool source)."""
    aliases = aliases or {}
    out = []
    for m in messages:
        if m.get("role") != "assistant":
            continue
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function", tc)
            if isinstance(fn.get("name"), str):
                out.append(normalise(aliases.get(fn["name"], fn["name"])))
    return out


def bigrams(path: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(path, path[1:]))


@dataclass
class ItemContamination:
    traj_id: str
    kind: str
    split: str
    category: str
    path: list[str]
    exact_match: bool
    matched_entry: str | None
    bigrams: int
    shared_bigrams: int
    bigram_overlap: float
    flagged: bool


@dataclass
class ContaminationReport:
    items: list[ItemContamination]
    bfcl_paths: int
    mode: str = "none"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        with_path = [i for i in self.items if i.path]
        multi = [i for i in with_path if i.kind == "multi_turn"]
        all_bigrams = sum(i.bigrams for i in with_path)

        def share(xs: Sequence[ItemContamination], pred) -> float:
            return sum(1 for x in xs if pred(x)) / len(xs) if xs else 0.0

        return {
            "items": len(self.items),
            "items_with_calls": len(with_path),
            "multi_turn_items": len(multi),
            "bfcl_paths": self.bfcl_paths,
            "exact_match_share": share(with_path, lambda i: i.exact_match),
            "exact_match_share_multi_turn": share(multi, lambda i: i.exact_match),
            "bigram_item_share": share([i for i in with_path if i.bigrams], lambda i: i.shared_bigrams > 0),
            "bigram_item_share_multi_turn": share([i for i in multi if i.bigrams], lambda i: i.shared_bigrams > 0),
            "bigram_share": sum(i.shared_bigrams for i in with_path) / all_bigrams if all_bigrams else 0.0,
            "flagged": sum(i.flagged for i in self.items),
            "mode": self.mode,
        }

    def frame(self) -> pl.DataFrame:
        schema = {
            "traj_id": pl.String,
            "kind": pl.String,
            "split": pl.String,
            "category": pl.String,
            "path": pl.List(pl.String),
            "exact_match": pl.Boolean,
            "matched_entry": pl.String,
            "bigrams": pl.Int64,
            "shared_bigrams": pl.Int64,
            "bigram_overlap": pl.Float64,
            "flagged": pl.Boolean,
        }
        return pl.DataFrame([asdict(i) for i in self.items], schema=schema)

    def markdown(self) -> str:
        s = self.summary()
        pct = lambda v: f"{100 * v:.1f}%"
        lines = [
            "# Contamination with BFCL's multi-turn test set",
            "",
            f"{s['items_with_calls']} items with calls ({s['multi_turn_items']} multi-turn) against {s['bfcl_paths']} BFCL "
            "ground-truth paths (multi_turn_base, miss_func, miss_param, long_context); function names without class prefix.",
            "",
            *[f"> {n}" for n in self.notes],
            *([""] if self.notes else []),
            "| measure | all items | multi-turn items | paper |",
            "|---|---|---|---|",
            f"| exact path match | {pct(s['exact_match_share'])} | {pct(s['exact_match_share_multi_turn'])} | 0.3% |",
            f"| items sharing a 2-gram | {pct(s['bigram_item_share'])} | {pct(s['bigram_item_share_multi_turn'])} | 5.3% |",
            f"| 2-grams shared | {pct(s['bigram_share'])} | | |",
            "",
            f"Flagged ({s['mode']}): {s['flagged']} items.",
        ]
        hits = [i for i in self.items if i.exact_match or i.shared_bigrams][:20]
        if hits:
            lines += ["", "| item | kind | path | exact match | shared 2-grams |", "|---|---|---|---|---|"]
            lines += [
                f"| {i.traj_id} | {i.kind} | {' > '.join(i.path)} | {i.matched_entry or '-'} | {i.shared_bigrams}/{i.bigrams} |"
                for i in hits
            ]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary(), "notes": self.notes, "items": [asdict(i) for i in self.items]}, indent=2)


def contamination(
    items: Iterable[dict[str, Any]],
    bfcl_paths: Sequence[dict[str, Any]],
    mode: str = "none",
    notes: Sequence[str] = (),
    aliases: dict[str, str] | None = None,
) -> ContaminationReport:
    """``items``: rows with ``traj_id``, ``kind``, ``split``, ``category``, ``messages``;
    ``bfcl_paths``: ``{"id", "path"}`` per BFCL entry (:func:`magnet_lib.evaluation.bfcl.multi_turn_paths`);
    ``aliases``: pool name -> BFCL name of renamed BFCL functions (:func:`magnet_lib.pool.bfcl_source.name_mapping`)."""
    if mode not in DROP_MODES:
        raise ValueError(f"bfcl.drop_contaminated must be one of {', '.join(DROP_MODES)}, not {mode!r}")
    exact: dict[tuple[str, ...], str] = {}
    grams: set[tuple[str, str]] = set()
    for p in bfcl_paths:
        path = tuple(normalise(n) for n in p["path"])
        exact.setdefault(path, p["id"])
        grams.update(bigrams(path))
    out = []
    for row in items:
        messages = row.get("messages") or []
        if isinstance(messages, str):
            messages = json.loads(messages)
        path = item_path(messages, aliases)
        match = exact.get(tuple(path)) if path else None
        pairs = bigrams(path)
        shared = sum(1 for g in pairs if g in grams)
        flagged = (mode == "exact" and match is not None) or (mode == "ngram" and (match is not None or shared > 0))
        out.append(
            ItemContamination(
                traj_id=str(row.get("traj_id")),
                kind=str(row.get("kind")),
                split=str(row.get("split", "train")),
                category=str(row.get("category")),
                path=path,
                exact_match=match is not None,
                matched_entry=match,
                bigrams=len(pairs),
                shared_bigrams=shared,
                bigram_overlap=shared / len(pairs) if pairs else 0.0,
                flagged=flagged,
            )
        )
    return ContaminationReport(items=out, bfcl_paths=len(bfcl_paths), mode=mode, notes=list(notes))


def drop_contaminated(
    rows: Sequence[Any], mode: str, bfcl_paths: Sequence[dict[str, Any]] | None = None, aliases: dict[str, str] | None = None
) -> tuple[list[Any], list[str]]:
    """``rows`` (sft_set examples) without the items ``mode`` flags; returns (kept, dropped ids).
    ``mode='none'`` keeps everything; ``bfcl_paths`` default: BFCL's, from bfcl-eval (without
    it, nothing can be flagged and everything is kept)."""
    if mode == "none":
        return list(rows), []
    if bfcl_paths is None:
        if not bfcl.available():
            return list(rows), []
        bfcl_paths = bfcl.multi_turn_paths()
    as_dicts = [r.model_dump() if hasattr(r, "model_dump") else dict(r) for r in rows]
    report = contamination(as_dicts, bfcl_paths, mode, aliases=aliases)
    dropped = {i.traj_id for i in report.items if i.flagged}
    kept = [r for r, d in zip(rows, as_dicts) if str(d.get("traj_id")) not in dropped]
    return kept, sorted(dropped)


def bfcl_aliases(settings) -> dict[str, str] | None:
    """The renamed BFCL functions of the pool (the opt-in BFCL tool source), else None."""
    if not settings.bfcl.tool_source:
        return None
    return name_mapping()
