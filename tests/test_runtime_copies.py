"""Copies of an episode's world: independent of their original, and a call tried on a copy
of a state that was tried before is looked up, not run, with the same result as running it."""

from magnet_lib.models import Call
from magnet_lib.pool import execution
from magnet_lib.pool.envs import builtin_environments
from magnet_lib.pool.execution import EpisodeRuntime


def _runtime(category: str = "stock_trading", seed: int = 3) -> EpisodeRuntime:
    return EpisodeRuntime(builtin_environments()[category].tools(), seed)


def _order(world: EpisodeRuntime, side: str) -> Call:
    symbol = world.environments["stock_trading"].user_values()["symbol"][0]
    return Call(name="place_stock_order", arguments={"symbol": symbol, "side": side, "quantity": 2, "order_type": "market"})


def test_a_copy_is_its_own_world():
    original = _runtime()
    buy = _order(original, "buy")
    before = original.state()
    copy_ = original.offline_copy()
    out = copy_.execute(buy)
    assert "error" not in out
    assert copy_.state() != before  # the copy bought
    assert original.state() == before  # the original did not


def test_a_remembered_trial_equals_running_the_call():
    execution._TRIALS.entries.clear()
    execution._TRIALS.size = 0
    world = _runtime()
    buy, sell = _order(world, "buy"), _order(world, "sell")
    first, second = world.offline_copy(), world.offline_copy()
    ran = first.execute(buy)
    assert "error" not in ran
    hits = len(execution._TRIALS.entries)
    looked_up = second.execute(buy)
    assert len(execution._TRIALS.entries) == hits  # the second copy's call was not run again
    assert looked_up == ran and looked_up is not ran  # same output, its own object
    assert second.state() == first.state()
    # and both equal a world that ran the call itself, with no copy in between
    plain = _runtime()
    assert plain.execute(buy) == ran and plain.state() == first.state()
    # the looked-up world goes on as a live one: the next call sees the bought shares
    sold = second.execute(sell)
    assert "error" not in sold and sold == plain.execute(sell)
    assert second.state() == plain.state()


def test_a_world_changed_by_hand_is_not_taken_for_its_old_state():
    world = _runtime()
    buy = _order(world, "buy")
    assert "error" not in world.offline_copy().execute(buy)  # remembered for world's current state
    account = world.environments["stock_trading"]  # taken: may be changed
    account.cash_balance = 0.0
    refused = world.offline_copy().execute(buy)
    assert "error" in refused  # run on the changed world, not looked up


def test_every_environment_pickles_to_the_same_bytes_after_a_round_trip():
    """Equal states give equal pickles (pydantic keeps a set of given fields, and a set's order
    may change with each round trip): what lets a read be told from a change."""
    import pickle

    for category, env_class in sorted(builtin_environments().items()):
        env = env_class(seed=5)
        blob = pickle.dumps(env, pickle.HIGHEST_PROTOCOL)
        again = pickle.loads(blob)
        assert pickle.dumps(again, pickle.HIGHEST_PROTOCOL) == blob, category
        assert pickle.dumps(pickle.loads(pickle.dumps(again, pickle.HIGHEST_PROTOCOL)), pickle.HIGHEST_PROTOCOL) == blob, category
        assert again.state() == env.state(), category
        assert type(again.rng) is type(env.rng) and again.rng.getstate() == env.rng.getstate(), category


def test_a_read_keeps_the_state_so_the_call_after_it_is_looked_up():
    execution._TRIALS.entries.clear()
    execution._TRIALS.size = 0
    world = _runtime()
    symbol = world.environments["stock_trading"].user_values()["symbol"][0]
    quote = Call(name="get_stock_quote", arguments={"symbol": symbol})
    buy = _order(world, "buy")
    bought = world.offline_copy().execute(buy)  # remembered for world's state
    reader = world.offline_copy()
    assert "error" not in reader.execute(quote)
    assert reader._token == world._token  # the read changed nothing: same state, same token
    runs = len(execution._TRIALS.entries)
    after_read = reader.execute(buy)
    assert len(execution._TRIALS.entries) == runs  # looked up as on the state before the read
    assert after_read == bought
    plain = _runtime()
    plain.execute(quote)
    assert plain.execute(buy) == bought and plain.state() == reader.state()
