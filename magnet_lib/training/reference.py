"""The replay reference of a multi-turn trajectory: the positive trajectory with the episode it
was distilled from, its turns, the world it leaves before a turn, the tools of that world and
the judge's item for a response at a turn. Negative hints (:mod:`magnet_lib.training.hints`)
and the multi-turn evaluation (:mod:`magnet_lib.evaluation.multi_turn`) both replay episodes
through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from magnet_lib.models import Episode, Message, Tool, Trajectory
from magnet_lib.pool.execution import EpisodeRuntime, make_runtime
from magnet_lib.training.error_judge import ChatTurn, JudgeItem, split_turns
from magnet_lib.training.student import replay


@dataclass
class Reference:
    """A positive trajectory with the episode it was distilled from (world seed, turn labels)."""

    trajectory: Trajectory
    episode: Episode
    runner: Any = field(default=None, repr=False)  # simulates spec-only tools in LLM mode
    head: list[Message] = field(init=False)
    turns: list[ChatTurn] = field(init=False)

    def __post_init__(self) -> None:
        self.head, self.turns = split_turns(self.trajectory.messages)

    @property
    def seed(self) -> int:
        return self.episode.seed

    def label(self, index: int) -> str:
        if len(self.episode.turns) == len(self.turns):
            return self.episode.turns[index].label
        return "call"

    def history(self, index: int) -> list[Message]:
        """The reference's messages before turn ``index`` (system prompt left out)."""
        return [m for t in self.turns[:index] for m in t.messages]

    def world(self, tools: Sequence[Tool], before_turn: int) -> EpisodeRuntime:
        """A fresh world of the episode in the state the reference leaves before a turn."""
        runtime = make_runtime(tools, self.seed, self.runner)
        for t in self.turns[:before_turn]:
            replay(runtime, t.responses)
        return runtime


def match_references(episodes: Iterable[Episode], trajectories: Iterable[Trajectory], runner=None) -> list[Reference]:
    """Multi-turn positive trajectories paired with their episodes, in a stable order; their
    worlds simulate spec-only tools through ``runner`` in LLM mode."""
    by_id = {e.episode_id: e for e in episodes if e.status == "ok"}
    refs = [
        Reference(t, by_id[t.episode_id], runner)
        for t in trajectories
        if t.kind == "multi_turn" and t.episode_id in by_id and split_turns(t.messages)[1]
    ]
    return sorted(refs, key=lambda r: r.trajectory.traj_id)


def runtime_tools(reference: Reference, pool: dict[str, Tool]) -> list[Tool]:
    """The tools of the episode's world: pool tools by name; a function known only from the
    trajectory's spec is simulated from it."""
    names = list(dict.fromkeys([*reference.episode.tools, *(s.get("function", s)["name"] for s in reference.trajectory.tools)]))
    specs = {s.get("function", s)["name"]: s.get("function", s) for s in reference.trajectory.tools}
    out = []
    for name in names:
        if name in pool:
            out.append(pool[name])
        elif name in specs:
            fn = specs[name]
            out.append(
                Tool(
                    name=name,
                    category=reference.trajectory.category,
                    tool_class="",
                    description=fn.get("description", ""),
                    parameters=fn.get("parameters") or {"type": "object", "properties": {}},
                    source="spec",
                    executable=False,
                )
            )
    return out


def offered_tools(trajectory: Trajectory, before_message: int) -> list[dict[str, Any]]:
    """The functions offered when message ``before_message`` is written: the trajectory's
    tools plus those added mid-conversation before it (the turn after a miss_func turn)."""
    added = [spec for u in trajectory.tool_updates if u["message_index"] <= before_message for spec in u["tools"]]
    return [*trajectory.tools, *added]


def judge_item(
    ref: Reference, index: int, response: Sequence[Message], *, truncated: bool = False, malformed: Sequence[str] = ()
) -> JudgeItem:
    user_messages = [i for i, m in enumerate(ref.trajectory.messages) if m.get("role") == "user"]
    return JudgeItem(
        episode_id=ref.episode.episode_id,
        turn_index=index,
        label=ref.label(index),
        tools=offered_tools(ref.trajectory, user_messages[index]),
        history=ref.history(index),
        query=ref.turns[index].user.get("content") or "",
        reference=ref.turns[index].responses,
        response=list(response),
        truncated=truncated,
        malformed=list(malformed),
    )
