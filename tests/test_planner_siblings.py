"""A value taken from a listed object goes with the identifier taken from the same list. Read
in the default run: 'pay the bill ... for the third bill id in that result and the second
amount from that list' (the third bill paid with the second bill's amount)."""

from __future__ import annotations

import random

from magnet_lib.models import Call
from magnet_lib.pool.envs.banking import BankingEnv
from magnet_lib.pool.execution import make_runtime
from magnet_lib.translation.planner import HistoryCall, plan_turn


def test_a_bill_is_paid_with_its_own_amount():
    tools = {t.name: t for t in BankingEnv.tools()}
    runtime = make_runtime(list(tools.values()), seed=0)
    listed = runtime.execute(Call(name="list_due_bills", arguments={}))
    amounts = {b["bill_id"]: b["amount"] for b in listed["bills"]}
    assert len(set(amounts.values())) == len(amounts) > 2
    history = [HistoryCall(turn=0, call=Call(name="list_due_bills", arguments={}), output=listed)]
    both = 0
    for seed in range(30):
        (planned,) = plan_turn(["pay_bill"], tools, history, runtime, random.Random(seed), attempt=1, optional_p=0.0)
        bill, amount = planned.arguments["bill_id"], planned.arguments["amount"]
        if bill.kind == amount.kind == "previous_turn":
            both += 1
            assert amount.value == amounts[bill.value], (bill.value, amount.value)
    assert both >= 10


def test_a_value_from_a_call_of_the_same_turn_is_refused_where_the_world_refuses_it():
    """Read in the default run: 'get me the contact info ... and the contact by name for it and
    then add new contact (the first result)': add_new_contact took 'Daniel Kim' from the look-up
    of the same turn, a second contact of a name already in the address book."""
    from magnet_lib.pool.envs.messaging import MessagingEnv

    tools = {t.name: t for t in MessagingEnv.tools()}
    runtime = make_runtime(list(tools.values()), seed=0)
    known = {c["contact_name"] for c in runtime.state()["messaging"]["contacts"].values()}
    for seed in range(8):
        plan = plan_turn(["find_contact_by_name", "add_new_contact"], tools, [], runtime, random.Random(seed), optional_p=0.0)
        name = plan[1].arguments["contact_name"]
        assert name.kind != "same_turn" and name.value not in known
