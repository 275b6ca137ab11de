"""TrialWorlds: the probes of one turn share the worlds their trial calls made, so a call
tried again from the same world is run once, with the output and world a fresh copy gives."""

from __future__ import annotations

import random

from magnet_lib.models import Call
from magnet_lib.pool.envs.shopping import ShoppingEnv
from magnet_lib.pool.execution import make_runtime
from magnet_lib.translation.planner import TrialWorlds, plan_turn, probe_plan


def _runtime():
    return make_runtime(ShoppingEnv.tools(), seed=5)


def _copies(monkeypatch, runtime) -> list[int]:
    made: list[int] = []
    original = type(runtime).offline_copy

    def counted(self):
        made.append(1)
        return original(self)

    monkeypatch.setattr(type(runtime), "offline_copy", counted)
    return made


def test_a_call_from_the_same_world_runs_once_and_gives_what_a_fresh_copy_gives(monkeypatch):
    runtime = _runtime()
    product = next(p for p in runtime.state()["shopping"]["products"].values() if p["stock"] > 1)
    add = Call(name="add_product_to_cart", arguments={"product_id": product["product_id"], "quantity": 1})
    fresh = runtime.offline_copy().execute(add)
    made = _copies(monkeypatch, runtime)
    memo = TrialWorlds()
    first_out, first_world = memo.run(runtime, add)
    again_out, again_world = memo.run(runtime, add)
    assert len(made) == 1 and again_world is first_world and again_out == first_out == fresh
    assert runtime.state()["shopping"]["cart"] == {}  # the world it started from is never run on
    view = Call(name="view_shopping_cart", arguments={})
    assert memo.run(first_world, view)[0]["items"][0]["product_id"] == product["product_id"]  # chained: the cart holds it
    assert len(made) == 2


def test_probes_sharing_a_memo_plan_and_probe_the_same_with_fewer_copies(monkeypatch):
    functions = ["search_products", "get_product_details", "add_product_to_cart"]
    tools = {t.name: t for t in ShoppingEnv.tools()}

    def plans(memo):
        runtime = _runtime()
        made = _copies(monkeypatch, runtime)
        out = []
        for probe in range(4):
            rng = random.Random(f"probe:{probe % 2}")  # two probes repeat the others' draws
            plan = plan_turn(functions, tools, [], runtime, rng, optional_p=0.0, memo=memo)
            out.append((plan, probe_plan(plan, tools, runtime, memo)))
        monkeypatch.undo()
        return out, len(made)

    plain, plain_copies = plans(None)
    shared, shared_copies = plans(TrialWorlds())
    assert [(p[0], p[1]) for p in plain] == [(p[0], p[1]) for p in shared]
    assert all(failure is None for _, failure in shared)
    # without: each probe copies once per call and once more for its probe; with: once per distinct call
    assert plain_copies == 4 * (len(functions) + 1) and shared_copies <= 2 * len(functions)
