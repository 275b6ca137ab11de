from magnet_lib.pool.envs.stock_trading import StockTradingEnv
from tests.envs_support import ToolRecorder


def test_buy_with_affordable_shares_then_sell_position():
    r = ToolRecorder(StockTradingEnv(seed=3))
    symbol = r.ok("lookup_stock_symbol", company_name="northwind")["matches"][0]["symbol"]
    quote = r.ok("get_stock_quote", symbol=symbol)
    assert r.ok("get_market_status", exchange=quote["exchange"])["is_open"]
    balance = r.ok("get_trading_balance")
    shares = r.ok("calculate_affordable_shares", available_cash=balance["available_cash"], price=quote["price"])
    assert shares["total_cost"] <= balance["available_cash"] < shares["total_cost"] + quote["price"]
    order = r.ok("place_stock_order", symbol=symbol, side="buy", quantity=shares["quantity"])
    assert order["status"] == "filled" and order["filled_price"] == quote["price"]
    after = r.ok("get_trading_balance")
    assert abs(after["cash_balance"] - (balance["cash_balance"] - shares["total_cost"])) < 0.01
    # the account cannot afford one more share now
    r.err("place_stock_order", "insufficient_funds", symbol=symbol, side="buy", quantity=shares["quantity"])
    assert r.ok("get_stock_order_status", order_id=order["order_id"])["status"] == "filled"
    r.err("cancel_stock_order", "order_not_open", order_id=order["order_id"])

    held = {h["symbol"]: h for h in r.ok("get_stock_portfolio")["holdings"]}
    assert held[symbol]["quantity"] == shares["quantity"]
    position = r.ok("get_stock_position", symbol=symbol)
    assert position["average_cost"] == quote["price"] and position["unrealized_gain"] == 0
    r.err("place_stock_order", "insufficient_shares", symbol=symbol, side="sell", quantity=position["quantity"] + 1)
    r.ok("place_stock_order", symbol=symbol, side="sell", quantity=position["quantity"])
    assert symbol not in {h["symbol"] for h in r.ok("get_stock_portfolio")["holdings"]}
    r.err("get_stock_position", "no_position", symbol=symbol)
    assert abs(r.ok("get_trading_balance")["cash_balance"] - balance["cash_balance"]) < 0.01


def test_closed_exchange_gates_market_orders_and_limit_orders_reserve_cash():
    r = ToolRecorder(StockTradingEnv(seed=3))
    quote = r.ok("get_stock_quote", symbol="KSTA")
    status = r.ok("get_market_status", exchange=quote["exchange"])
    assert not status["is_open"] and status["next_open"] != "now"
    r.err("place_stock_order", "market_closed", symbol="KSTA", side="buy", quantity=1)
    r.err("place_stock_order", "missing_limit_price", symbol="KSTA", side="buy", quantity=1, order_type="limit")
    limit = round(quote["price"] * 0.95, 2)
    # the world starts with one limit buy still waiting (an order the user placed before)
    waiting = [o["order_id"] for o in r.ok("list_stock_orders", status="open")["orders"]]
    assert len(waiting) == 1
    before = r.ok("get_trading_balance")
    order = r.ok("place_stock_order", symbol="KSTA", side="buy", quantity=10, order_type="limit", limit_price=limit)
    assert order["status"] == "open"
    balance = r.ok("get_trading_balance")
    assert abs(before["available_cash"] - balance["available_cash"] - 10 * limit) < 0.01
    open_ids = [o["order_id"] for o in r.ok("list_stock_orders", status="open")["orders"]]
    assert sorted(open_ids) == sorted([order["order_id"], *waiting])
    cancelled = r.ok("cancel_stock_order", order_id=order["order_id"])
    assert abs(cancelled["released_cash"] - 10 * limit) < 0.01
    assert [o["order_id"] for o in r.ok("list_stock_orders", status="open")["orders"]] == waiting
    assert order["order_id"] in [o["order_id"] for o in r.ok("list_stock_orders")["orders"]]
    balance = r.ok("get_trading_balance")
    assert balance["available_cash"] == before["available_cash"]  # only the waiting order reserves cash again
    r.err("cancel_stock_order", "order_not_open", order_id=order["order_id"])
    r.err("get_stock_order_status", "unknown_order", order_id="ORD-1")
    r.err("get_stock_quote", "unknown_symbol", symbol="ZZZZ")
    r.err("lookup_stock_symbol", "no_match", company_name="Atlantis Mining")
    r.err("place_stock_order", "invalid_quantity", symbol="KSTA", side="buy", quantity=0)
    r.err("calculate_affordable_shares", "invalid_amount", available_cash=100.0, price=0.0)


def test_watchlist():
    r = ToolRecorder(StockTradingEnv(seed=3))
    watched = [e["symbol"] for e in r.ok("get_stock_watchlist")["entries"]]
    assert len(watched) == 2
    added = r.ok("add_stock_to_watchlist", symbol="HLXS")
    assert added["watchlist_size"] == 3
    r.err("add_stock_to_watchlist", "already_watched", symbol="HLXS")
    entries = r.ok("get_stock_watchlist")["entries"]
    assert entries[-1]["symbol"] == "HLXS" and entries[-1]["price"] > 0
    r.ok("remove_stock_from_watchlist", symbol=watched[0])
    assert watched[0] not in [e["symbol"] for e in r.ok("get_stock_watchlist")["entries"]]
    r.err("remove_stock_from_watchlist", "not_watched", symbol=watched[0])


def test_every_tool_runs_in_one_episode():
    r = ToolRecorder(StockTradingEnv(seed=3))
    # one pass over every tool on a single instance, ids taken from earlier outputs
    symbol = r.ok("lookup_stock_symbol", company_name="Helix")["matches"][0]["symbol"]
    quote = r.ok("get_stock_quote", symbol=symbol)
    r.ok("get_market_status", exchange=quote["exchange"])
    cash = r.ok("get_trading_balance")["available_cash"]
    qty = r.ok("calculate_affordable_shares", available_cash=cash / 4, price=quote["price"])["quantity"]
    oid = r.ok("place_stock_order", symbol=symbol, side="buy", quantity=qty, order_type="limit", limit_price=quote["price"] - 1)["order_id"]
    r.ok("get_stock_order_status", order_id=oid)
    r.ok("list_stock_orders", status="open")
    r.ok("cancel_stock_order", order_id=oid)
    first = r.ok("get_stock_portfolio")["holdings"][0]["symbol"]
    r.ok("get_stock_position", symbol=first)
    r.ok("add_stock_to_watchlist", symbol=symbol)
    r.ok("get_stock_watchlist")
    r.ok("remove_stock_from_watchlist", symbol=symbol)
    r.assert_all_called()
