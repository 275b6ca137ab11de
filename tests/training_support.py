"""A realistic multi-turn episode for the training tests, built by really executing the
navigation environment: search_places -> get_distance -> convert_distance (nested, same
turn), a split turn that asks for a missing value, then plan_route using values from
earlier turns; tool messages and text summaries in OpenAI chat format."""

from __future__ import annotations

import json

from magnet_lib.models import Call, Episode, EpisodeTurn, Tool, Trajectory
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.pool.execution import EpisodeRuntime

SYSTEM = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, make one or more function calls to achieve the purpose. If none of the functions "
    "can be used, point it out. If the given question lacks the parameters required by the function, also point it out."
)


def navigation_tools() -> list[Tool]:
    return builtin_environments()["navigation"].tools()


def navigation_episode(seed: int = 7, episode_id: str = "ep-nav-1") -> tuple[Episode, Trajectory]:
    tools = navigation_tools()
    runtime = EpisodeRuntime(tools, seed)
    env = runtime.environments["navigation"]
    places = list(env.places.values())
    a = places[0]
    b = next(p for p in places if p.city != a.city)
    kind_a = a.kind.replace("_", " ")
    specs = [t.openai_spec() for t in tools]
    messages: list[dict] = [{"role": "system", "content": SYSTEM}]
    turns: list[EpisodeTurn] = []
    counter = iter(range(1000))

    def run_turn(index: int, query: str, calls: list[Call], summary, op="walk", label="call", target=None, missing=None):
        messages.append({"role": "user", "content": query})
        outputs = []
        for call in calls:
            out = runtime.execute(call)
            outputs.append(out)
            cid = f"call_{next(counter)}"
            messages.append({"role": "assistant", "content": None, "tool_calls": [call.to_openai(cid)]})
            messages.append({"role": "tool", "tool_call_id": cid, "content": json.dumps(out)})
        text = summary(outputs) if callable(summary) else summary
        messages.append({"role": "assistant", "content": text})
        turns.append(
            EpisodeTurn(
                index=index,
                query=query,
                functions=[c.name for c in calls],
                calls=calls,
                outputs=outputs,
                op=op,
                label=label,
                target=target,
                missing=missing,
            )
        )
        return outputs

    dist_calls = [Call(name="get_distance", arguments={"origin_place_id": a.place_id, "destination_place_id": b.place_id})]
    d = EpisodeRuntime(tools, seed).execute(dist_calls[0])  # the distance the nested conversion is written with
    run_turn(
        0,
        f"Find a {kind_a} in {a.city} for me.",
        [Call(name="search_places", arguments={"query": kind_a, "city": a.city})],
        lambda o: f"I found {o[0]['places'][0]['name']} in {a.city} (id {o[0]['places'][0]['place_id']}).",
    )
    run_turn(
        1,
        f"How far is that place from {b.name}? Tell me in kilometres.",
        dist_calls + [Call(name="convert_distance", arguments={"value": d["distance"], "from_unit": "miles", "to_unit": "km"})],
        lambda o: f"{a.name} is {o[0]['distance']} miles from {b.name}, which is {o[1]['value']} km.",
        op="insert_short",
    )
    run_turn(
        2,
        "Plan a route from there for me.",
        [],
        "Sure. Where should the route go, and how will you travel?",
        op="split",
        label="miss_params",
        target="plan_route",
        missing="destination_place_id",
    )
    run_turn(
        3,
        f"To {b.name}, by bike.",
        [Call(name="plan_route", arguments={"origin_place_id": a.place_id, "destination_place_id": b.place_id, "mode": "cycling"})],
        lambda o: f"Your cycling route {o[0]['route_id']} is {o[0]['distance_miles']} miles and takes about {o[0]['duration_minutes']} minutes.",
        op="insert_long",
    )
    episode = Episode(
        episode_id=episode_id,
        fsp_id="fsp-nav-1",
        category="navigation",
        variant="miss_params",
        seed=seed,
        turns=turns,
        tools=[t.name for t in tools],
    )
    traj = Trajectory(
        traj_id=f"traj-{episode_id}",
        kind="multi_turn",
        category="navigation",
        messages=list(messages),
        tools=specs,
        episode_id=episode_id,
        fsp_id="fsp-nav-1",
    )
    return episode, traj


def single_turn_trajectory(i: int = 0) -> Trajectory:
    tools = navigation_tools()
    call = Call(name="convert_distance", arguments={"value": 3.0 + i, "from_unit": "miles", "to_unit": "km"})
    out = EpisodeRuntime(tools, 0).execute(call)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Convert {3.0 + i} miles to km."},
        {"role": "assistant", "content": None, "tool_calls": [call.to_openai("c0")]},
        {"role": "tool", "tool_call_id": "c0", "content": json.dumps(out)},
        {"role": "assistant", "content": f"{3.0 + i} miles is {out['value']} km."},
    ]
    return Trajectory(
        traj_id=f"single-{i}", kind="single", category="navigation", messages=messages, tools=[t.openai_spec() for t in tools]
    )


def sft_rows(n_multi: int = 3, n_single: int = 3) -> list[Trajectory]:
    rows = [navigation_episode(seed=7 + i, episode_id=f"ep-{i}")[1] for i in range(n_multi)]
    rows += [single_turn_trajectory(i) for i in range(n_single)]
    return rows
