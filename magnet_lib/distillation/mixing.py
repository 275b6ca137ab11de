"""The SFT set (paper section 3.6, post-processing, and the data mix of section 4).

From the positive multi-turn trajectories and the single-turn / irrelevance items of every
category:

1. drop trajectories whose tool outputs or replies contain a failure keyword
   (``distill.failure_keywords``: "Bad request", "does not match", ...);
2. drop exact duplicates (same conversation and tools) and near duplicates (same kind and
   functions, and at least ``distill.near_duplicate`` of their word 3-grams shared);
3. hold out whole FSPs for evaluation (``distill.heldout_fraction``, decided by a hash of the
   initial walk, so both variants of a walk land on the same side): never trained on;
4. mix the train split by the settings' ratios (default 59 / 23 / 18 single / multi-turn /
   irrelevance): the largest set that holds the ratios with the items available;
5. shuffle the order of the functions in the system prompt (and ``tools``) per example.

Every row keeps the ids it came from (``traj_id``, ``episode_id``, ``fsp_id``,
``parent_fsp_id``, ``functions``) and says its ``split``.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from magnet_lib.lint.data import Item
from magnet_lib.lint.rules import request_signature
from magnet_lib.models import Trajectory, stable_hash
from magnet_lib.settings import DistillSettings
from magnet_lib.tool_calls import message_calls
from magnet_lib.training import chat_format as cf

#: largest group of same-kind, same-functions items compared pairwise (bigger groups are compared in windows)
NEAR_DUPLICATE_WINDOW = 400

Bucket = Literal["single", "multi", "irrelevance"]
BUCKET_OF: dict[str, Bucket] = {
    "single": "single",
    "parallel": "single",
    "multiple": "single",
    "multi_turn": "multi",
    "irrelevance": "irrelevance",
}


class SFTExample(Trajectory):
    """A row of ``sft_set``: a trajectory and the split it belongs to."""

    split: Literal["train", "heldout"] = "train"


class MixReport(BaseModel):
    """What the mix did: counts at every step, for the quality report and metadata."""

    input: int = 0
    failure_keyword: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    heldout: int = 0
    available: dict[str, int] = Field(default_factory=dict, description="Train items per bucket before the mix.")
    selected: dict[str, int] = Field(default_factory=dict, description="Train items per bucket in the set.")
    targets: dict[str, float] = Field(default_factory=dict)
    limiting_bucket: str | None = None

    @property
    def duplicate_rate(self) -> float:
        considered = self.input - self.failure_keyword
        return (self.exact_duplicates + self.near_duplicates) / considered if considered else 0.0


def failure_keyword(trajectory: Trajectory, keywords: Sequence[str]) -> str | None:
    """The first failure keyword in a tool output or assistant reply, if any."""
    lowered = [k.lower() for k in keywords]
    for m in trajectory.messages:
        if m.get("role") in ("tool", "assistant"):
            text = str(m.get("content") or "").lower()
            for k, original in zip(lowered, keywords):
                if k in text:
                    return original
    return None


def conversation_key(trajectory: Trajectory) -> str:
    """Exact-duplicate key: the conversation without the system prompt, and the tool names."""
    return stable_hash([trajectory.messages[1:], sorted(t["function"]["name"] for t in trajectory.tools)], 24)


def request_key(trajectory: Trajectory, loose: bool = False) -> str:
    """What the item asks and does (:func:`magnet_lib.lint.rules.request_signature`, hashed):
    two items alike here teach the same thing however their replies are worded and whatever
    distractors they offer. ``loose``: numbers and word endings aside, the calls by name."""
    item = Item(item_id=trajectory.traj_id, messages=trajectory.messages, tools=[], kind=trajectory.kind)
    return stable_hash([request_signature(item, loose)], 24)


def _text(trajectory: Trajectory) -> str:
    parts = []
    for m in trajectory.messages[1:]:
        parts.append(str(m.get("content") or ""))
        parts.extend(f"{c.name} {json.dumps(c.arguments, sort_keys=True)}" for c in message_calls(m))
    return " ".join(parts).lower()


def shingles(text: str, n: int = 3) -> set[str]:
    tokens = re.findall(r"\w+|[^\w\s]", text)
    return {" ".join(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def deduplicate(items: Sequence[Trajectory], near_duplicate: float) -> tuple[list[Trajectory], int, int]:
    """Items without exact and near duplicates (the first of each group is kept, in
    ``traj_id`` order; exact: the same conversation and tools, or the same requests and calls,
    :func:`request_key`; near: the same requests up to numbers and word endings and the same
    functions, or at least ``near_duplicate`` of their word 3-grams shared); also the numbers
    of exact and near duplicates removed."""
    seen: set[str] = set()
    unique: list[Trajectory] = []
    exact = 0
    for t in sorted(items, key=lambda t: t.traj_id):
        keys = (conversation_key(t), request_key(t))  # the same conversation, or the same requests and calls
        if any(k in seen for k in keys):
            exact += 1
            continue
        seen.update(keys)
        unique.append(t)
    groups: dict[tuple, list[Trajectory]] = {}
    loose: set[str] = set()
    near = 0
    for t in unique:
        key = request_key(t, loose=True)  # the same requests up to numbers and word endings, the same functions
        if key in loose:
            near += 1
            continue
        loose.add(key)
        groups.setdefault((t.kind, tuple(t.functions)), []).append(t)
    kept: list[Trajectory] = []
    for group in groups.values():
        if len(group) == 1:  # nothing to compare with: no 3-grams needed
            kept.extend(group)
            continue
        accepted: list[tuple[Trajectory, set[str]]] = []
        for t in group:
            sh = shingles(_text(t))
            window = accepted[-NEAR_DUPLICATE_WINDOW:]
            if any(jaccard(sh, other) >= near_duplicate for _, other in window):
                near += 1
                continue
            accepted.append((t, sh))
        kept.extend(t for t, _ in accepted)
    kept.sort(key=lambda t: t.traj_id)
    return kept, exact, near


def is_heldout(trajectory: Trajectory, fraction: float, seed: int = 0) -> bool:
    """Multi-turn items of a held-out walk (hash of the initial FSP id): never trained on."""
    walk = trajectory.parent_fsp_id or trajectory.fsp_id
    if trajectory.kind != "multi_turn" or not walk or fraction <= 0:
        return False
    return int(stable_hash(["heldout", walk, seed]), 16) / 16**16 < fraction


def mix_counts(available: dict[str, int], ratios: dict[str, float]) -> tuple[dict[str, int], str | None]:
    """The largest counts that hold ``ratios`` with the items ``available`` per bucket,
    and the bucket that limits them."""
    active = {k: r for k, r in ratios.items() if r > 0}
    total_ratio = sum(active.values())
    if not active or total_ratio <= 0:
        return {k: 0 for k in ratios}, None
    norm = {k: r / total_ratio for k, r in active.items()}
    limit, limiting = min((available.get(k, 0) / r, k) for k, r in norm.items())
    counts = {k: min(available.get(k, 0), round(limit * r)) for k, r in norm.items()}
    return {k: counts.get(k, 0) for k in ratios}, limiting


def shuffle_tools(trajectory: Trajectory, seed: int = 0) -> Trajectory:
    """The same trajectory with its functions in a per-example random order, in ``tools``
    and in the system prompt."""
    rng = random.Random(f"tools:{trajectory.traj_id}:{seed}")
    tools = list(trajectory.tools)
    rng.shuffle(tools)
    messages = [dict(m) for m in trajectory.messages]
    if messages and messages[0].get("role") == "system":
        messages[0] = cf.system(tools)
    return trajectory.model_copy(update={"tools": tools, "messages": messages})


def coverage_first(ordered: Sequence[Trajectory], covered: set[str]) -> list[Trajectory]:
    """``ordered`` with the items that bring a function not ``covered`` yet first (in their
    order), then the rest: a mix that keeps a share of the items keeps as much of the pool as
    it can (single-turn and irrelevance kinds share ``covered``)."""
    seen = set(covered)
    first, rest = [], []
    for t in ordered:
        new = set(t.functions) - seen
        (first if new else rest).append(t)
        seen |= new
    return first + rest


def build_sft_set(trajectories: Sequence[Trajectory], distill: DistillSettings, seed: int = 0) -> tuple[list[SFTExample], MixReport]:
    """The SFT set and a report of every step."""
    report = MixReport(input=len(trajectories))
    clean = []
    for t in trajectories:
        if failure_keyword(t, distill.failure_keywords):
            report.failure_keyword += 1
        else:
            clean.append(t)
    unique, report.exact_duplicates, report.near_duplicates = deduplicate(clean, distill.near_duplicate)
    heldout = [t for t in unique if is_heldout(t, distill.heldout_fraction, seed)]
    held_ids = {t.traj_id for t in heldout}
    train = [t for t in unique if t.traj_id not in held_ids]
    report.heldout = len(heldout)
    buckets: dict[str, list[Trajectory]] = {"single": [], "multi": [], "irrelevance": []}
    for t in train:
        buckets[BUCKET_OF[t.kind]].append(t)
    ratios = {"single": distill.mix_single, "multi": distill.mix_multi, "irrelevance": distill.mix_irrelevance}
    report.available = {k: len(v) for k, v in buckets.items()}
    report.targets = ratios
    counts, report.limiting_bucket = mix_counts(report.available, ratios)
    selected: list[Trajectory] = []
    covered: set[str] = set()
    for name, items in buckets.items():
        rng = random.Random(f"mix:{name}:{seed}")
        ordered = sorted(items, key=lambda t: t.traj_id)
        rng.shuffle(ordered)
        chosen = coverage_first(ordered, covered if name != "multi" else set())[: counts[name]]
        if name != "multi":
            covered.update(f for t in chosen for f in t.functions)
        selected.extend(chosen)
    report.selected = {k: counts[k] for k in buckets}
    rows = [SFTExample(**shuffle_tools(t, seed).model_dump(), split="train") for t in selected]
    rows += [SFTExample(**shuffle_tools(t, seed).model_dump(), split="heldout") for t in heldout]
    rows.sort(key=lambda r: (r.split != "train", r.traj_id))
    return rows, report


def mix_shares(rows: Sequence[SFTExample]) -> dict[str, float]:
    """Share of each bucket in the train split."""
    train = [r for r in rows if r.split == "train"]
    counts = Counter(BUCKET_OF[r.kind] for r in train)
    return {k: counts.get(k, 0) / len(train) if train else 0.0 for k in ("single", "multi", "irrelevance")}
