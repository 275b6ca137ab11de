"""Stock trading: symbol lookup, quotes, market hours, orders, portfolio and watchlist.

Flows: lookup_stock_symbol -> symbol -> get_stock_quote (price, exchange) -> get_market_status (gate)
-> place_stock_order -> order_id -> get_stock_order_status / cancel_stock_order;
get_stock_quote (price) + get_trading_balance (available_cash) -> calculate_affordable_shares
(quantity) -> place_stock_order; get_stock_portfolio -> symbol -> get_stock_position (quantity)
-> place_stock_order(side='sell'); list_stock_orders -> order_id -> cancel_stock_order;
add_stock_to_watchlist -> get_stock_watchlist -> symbol -> remove_stock_from_watchlist / quote.

Market orders fill at the quoted price and need the symbol's exchange to be open; limit orders
are queued (cash or shares reserved) unless the limit already crosses the price on an open
exchange.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

# (company name, symbol, exchange, typical price in USD) -- invented companies
_COMPANIES = [
    ("Northwind Robotics", "NWRB", "NASDAQ", 142.0),
    ("Bluefin Energy", "BLFE", "NYSE", 58.0),
    ("Cedar Health Systems", "CDHS", "NYSE", 97.0),
    ("Helix Semiconductors", "HLXS", "NASDAQ", 311.0),
    ("Orchard Foods", "ORCF", "NYSE", 44.0),
    ("Quantum Freight", "QNTF", "NASDAQ", 23.0),
    ("Solace Pharmaceuticals", "SLCP", "NYSE", 176.0),
    ("Tidewater Shipping", "TDWS", "LSE", 12.5),
    ("Kestrel Aerospace", "KSTA", "LSE", 88.0),
    ("Sakura Electronics", "SKRE", "TSE", 36.0),
    ("Granite Bank Holdings", "GRBH", "NYSE", 65.0),
    ("Lumen Cloud Software", "LMCS", "NASDAQ", 254.0),
]
Exchange = Literal["NYSE", "NASDAQ", "LSE", "TSE"]
_NEXT_OPEN = {"NYSE": "09:30 ET", "NASDAQ": "09:30 ET", "LSE": "08:00 GMT", "TSE": "09:00 JST"}


class SymbolMatch(BaseModel):
    symbol: str = Field(description="Ticker symbol of the stock.")
    company_name: str = Field(description="Name of the listed company.")
    exchange: str = Field(description="Exchange the stock trades on.")


class SymbolMatches(BaseModel):
    """Listed companies whose name matches the search."""

    matches: list[SymbolMatch] = Field(description="Matching stocks, best first.")


class StockQuote(BaseModel):
    """The latest quote of a stock."""

    symbol: str = Field(description="Ticker symbol of the stock.")
    price: float = Field(description="Last traded price per share in USD.")
    change_percent: float = Field(description="Change since the previous close, in percent.")
    exchange: str = Field(description="Exchange the stock trades on.")
    currency: Literal["USD"] = Field(description="Currency of the price; always USD.")


class MarketStatus(BaseModel):
    """Whether an exchange is trading right now."""

    exchange: str = Field(description="The exchange.")
    is_open: bool = Field(description="True while the exchange accepts market orders.")
    next_open: str = Field(description="Local time the exchange opens next, when it is closed.")


class TradingBalance(BaseModel):
    """Cash in the trading account."""

    cash_balance: float = Field(description="Total cash in the account, in USD.")
    available_cash: float = Field(description="Cash not reserved by open buy orders, in USD; the buying power.")
    currency: Literal["USD"] = Field(description="Currency of the amounts; always USD.")


class AffordableShares(BaseModel):
    """How many whole shares a cash amount buys at a price."""

    quantity: int = Field(description="Whole shares that can be bought.")
    total_cost: float = Field(description="Cost of that many shares in USD.")
    leftover_cash: float = Field(description="Cash left after buying them, in USD.")


class StockOrder(BaseModel):
    """An order and its current state."""

    order_id: str = Field(description="Identifier of the order.")
    symbol: str = Field(description="Ticker symbol traded.")
    side: Literal["buy", "sell"] = Field(description="Whether shares are bought or sold.")
    quantity: int = Field(description="Number of shares.")
    order_type: Literal["market", "limit"] = Field(description="Market or limit order.")
    limit_price: float = Field(default=0.0, description="Limit price in USD; 0 for market orders.")
    status: Literal["open", "filled", "cancelled"] = Field(description="Order state.")
    filled_price: float = Field(default=0.0, description="Price per share the order filled at, in USD; 0 until filled.")


class StockOrderList(BaseModel):
    """The account's order history."""

    orders: list[StockOrder] = Field(description="Orders, newest first.")


class OrderCancellation(BaseModel):
    """Outcome of cancelling an order."""

    order_id: str = Field(description="Identifier of the cancelled order.")
    status: Literal["cancelled"] = Field(description="New state of the order.")
    released_cash: float = Field(description="Cash no longer reserved by the order, in USD.")


class Holding(BaseModel):
    symbol: str = Field(description="Ticker symbol held.")
    quantity: int = Field(description="Shares held.")
    market_value: float = Field(description="Current value of the shares in USD.")


class StockPortfolio(BaseModel):
    """Shares held in the account."""

    holdings: list[Holding] = Field(description="One entry per stock held.")
    total_market_value: float = Field(description="Value of all holdings in USD.")


class StockPosition(BaseModel):
    """Detail and performance of one holding."""

    symbol: str = Field(description="Ticker symbol held.")
    quantity: int = Field(description="Shares held, including those reserved by open sell orders.")
    average_cost: float = Field(description="Average price paid per share in USD.")
    price: float = Field(description="Current price per share in USD.")
    unrealized_gain: float = Field(description="Market value minus cost, in USD.")


class Watchlist(BaseModel):
    """Stocks the user follows."""

    entries: list[StockQuote] = Field(description="Watched stocks with their latest quote.")


class WatchlistChange(BaseModel):
    """Outcome of editing the watchlist."""

    symbol: str = Field(description="Ticker symbol added or removed.")
    watchlist_size: int = Field(description="Number of stocks watched afterwards.")


class _Lot(BaseModel):
    quantity: int
    average_cost: float


class StockTradingEnv(ToolEnvironment):
    category = "stock_trading"
    description = "Looking up stocks, checking quotes and market hours, trading and tracking a portfolio."

    def setup(self) -> None:
        rng = self.rng
        self.quotes: dict[str, StockQuote] = {}
        self.companies: dict[str, str] = {}
        for name, symbol, exchange, base in _COMPANIES:
            self.companies[symbol] = name
            self.quotes[symbol] = StockQuote(
                symbol=symbol,
                price=round(base * rng.uniform(0.85, 1.15), 2),
                change_percent=round(rng.uniform(-4.0, 4.0), 2),
                exchange=exchange,
                currency="USD",
            )
        # US exchanges always open in this world; the others follow the seed
        self.open_exchanges: list[str] = ["NYSE", "NASDAQ"] + [x for x in ("LSE", "TSE") if rng.random() < 0.3]
        self.cash_balance = float(rng.randrange(4000, 20000, 500))
        self.holdings: dict[str, _Lot] = {}
        for symbol in rng.sample(sorted(self.quotes), 3):
            price = self.quotes[symbol].price
            self.holdings[symbol] = _Lot(quantity=rng.randint(5, 40), average_cost=round(price * rng.uniform(0.7, 1.2), 2))
        self.orders: dict[str, StockOrder] = {}
        for symbol, lot in self.holdings.items():  # the history that built the holdings
            oid = self.new_id("ORD")
            self.orders[oid] = StockOrder(
                order_id=oid,
                symbol=symbol,
                side="buy",
                quantity=lot.quantity,
                order_type="market",
                status="filled",
                filled_price=lot.average_cost,
            )
        self.watchlist: list[str] = rng.sample([s for s in sorted(self.quotes) if s not in self.holdings], 2)
        # and a limit buy of a watched stock, 5% under its price, still waiting (an order a user may cancel)
        waiting = self.quotes[self.watchlist[0]]
        oid = self.new_id("ORD")
        self.orders[oid] = StockOrder(
            order_id=oid,
            symbol=waiting.symbol,
            side="buy",
            quantity=rng.randint(2, 10),
            order_type="limit",
            limit_price=round(waiting.price * 0.95, 2),
            status="open",
        )

    def user_values(self) -> dict[str, list]:
        return {
            "company_name": [name.split()[0] for name in self.companies.values()],
            "symbol": sorted(self.quotes),
            "quantity": [1, 5, 10],
            "available_cash": [500.0, 1000.0, 2500.0],
            "limit_price": [round(q.price * 0.95, 2) for q in self.quotes.values()],
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """An open order to cancel (a filled one cannot be); a limit price only for a limit
        order, near the price of the stock traded (a limit of $36 on a $276 stock is no order
        a user places)."""
        if tool == "cancel_stock_order" and param == "order_id":
            order = self.orders.get(value)
            return order is not None and order.status == "open"
        if tool == "place_stock_order" and param == "limit_price" and chosen is not None:
            quote = self.quotes.get(str(chosen.get("symbol", "")).upper())
            return chosen.get("order_type") == "limit" and quote is not None and abs(float(value) - quote.price) <= 0.1 * quote.price
        return True

    # ------------------------------------------------------------------ helpers
    def _quote(self, symbol: str) -> StockQuote:
        quote = self.quotes.get(symbol.upper())
        if quote is None:
            raise ToolError("unknown_symbol", f"no listed stock with symbol '{symbol}'")
        return quote

    def _order(self, order_id: str) -> StockOrder:
        return self.lookup(self.orders, order_id, "unknown_order", f"no order with id '{order_id}'")

    def _reserved_cash(self) -> float:
        return sum(o.quantity * o.limit_price for o in self.orders.values() if o.status == "open" and o.side == "buy")

    def _reserved_shares(self, symbol: str) -> int:
        return sum(o.quantity for o in self.orders.values() if o.status == "open" and o.side == "sell" and o.symbol == symbol)

    def _fill(self, order: StockOrder, price: float) -> None:
        cost = round(order.quantity * price, 2)
        lot = self.holdings.get(order.symbol)
        if order.side == "buy":
            self.cash_balance = round(self.cash_balance - cost, 2)
            if lot is None:
                self.holdings[order.symbol] = _Lot(quantity=order.quantity, average_cost=price)
            else:
                total = lot.quantity + order.quantity
                lot.average_cost = round((lot.quantity * lot.average_cost + cost) / total, 2)
                lot.quantity = total
        else:
            self.cash_balance = round(self.cash_balance + cost, 2)
            lot.quantity -= order.quantity
            if lot.quantity == 0:
                del self.holdings[order.symbol]
        order.status, order.filled_price = "filled", price

    # ------------------------------------------------------------------ market data
    @tool("Market data")
    def lookup_stock_symbol(self, company_name: str) -> SymbolMatches:
        """Find the ticker symbol of a listed company by (part of) its name.

        Args:
            company_name: Company name or part of it, e.g. 'Northwind'.
        """
        words = company_name.lower().split()
        hits = [
            SymbolMatch(symbol=s, company_name=n, exchange=self.quotes[s].exchange)
            for s, n in self.companies.items()
            if words and all(w in n.lower() for w in words)
        ]
        if not hits:
            raise ToolError("no_match", f"no listed company matches '{company_name}'")
        return SymbolMatches(matches=hits)

    @tool("Market data")
    def get_stock_quote(self, symbol: str) -> StockQuote:
        """Latest price of a stock in USD, its daily change and the exchange it trades on.

        Args:
            symbol: Ticker symbol, e.g. 'NWRB'.
        """
        return self._quote(symbol)

    @tool("Market data")
    def get_market_status(self, exchange: Exchange) -> MarketStatus:
        """Whether a stock exchange is open for trading now; market orders need it open.

        Args:
            exchange: The stock exchange to check.
        """
        is_open = exchange in self.open_exchanges
        return MarketStatus(exchange=exchange, is_open=is_open, next_open="now" if is_open else _NEXT_OPEN[exchange])

    # ------------------------------------------------------------------ account
    @tool("Account and portfolio")
    def get_trading_balance(self) -> TradingBalance:
        """Cash in the trading account and how much of it is free to buy shares."""
        available = round(self.cash_balance - self._reserved_cash(), 2)
        return TradingBalance(cash_balance=self.cash_balance, available_cash=available, currency="USD")

    @tool("Account and portfolio")
    def calculate_affordable_shares(self, available_cash: float, price: float) -> AffordableShares:
        """How many whole shares a cash amount buys at a given share price.

        Args:
            available_cash: Cash to spend, in USD.
            price: Price of one share, in USD.
        """
        if price <= 0 or available_cash < 0:
            raise ToolError("invalid_amount", "price must be positive and cash not negative")
        quantity = math.floor(available_cash / price)
        cost = round(quantity * price, 2)
        return AffordableShares(quantity=quantity, total_cost=cost, leftover_cash=round(available_cash - cost, 2))

    @tool("Account and portfolio")
    def get_stock_portfolio(self) -> StockPortfolio:
        """All stocks held in the account with their current market value."""
        holdings = [
            Holding(symbol=s, quantity=lot.quantity, market_value=round(lot.quantity * self.quotes[s].price, 2))
            for s, lot in sorted(self.holdings.items())
        ]
        return StockPortfolio(holdings=holdings, total_market_value=round(sum(h.market_value for h in holdings), 2))

    @tool("Account and portfolio")
    def get_stock_position(self, symbol: str) -> StockPosition:
        """Shares held of one stock, their average cost and unrealized gain.

        Args:
            symbol: Ticker symbol of a stock in the portfolio.
        """
        price = self._quote(symbol).price
        lot = self.holdings.get(symbol.upper())
        if lot is None:
            raise ToolError("no_position", f"the portfolio holds no shares of '{symbol}'")
        gain = round(lot.quantity * (price - lot.average_cost), 2)
        return StockPosition(symbol=symbol.upper(), quantity=lot.quantity, average_cost=lot.average_cost, price=price, unrealized_gain=gain)

    # ------------------------------------------------------------------ orders
    @tool("Order management")
    def place_stock_order(
        self,
        symbol: str,
        side: Literal["buy", "sell"],
        quantity: int,
        order_type: Literal["market", "limit"] = "market",
        limit_price: float | None = None,
    ) -> StockOrder:
        """Buy or sell shares; market orders fill now and need the exchange open, limit orders wait for their price.

        Args:
            symbol: Ticker symbol to trade.
            side: 'buy' or 'sell'.
            quantity: Number of whole shares.
            order_type: 'market' to trade now, 'limit' to trade at limit_price or better.
            limit_price: Highest price to buy at or lowest to sell at, in USD; required for limit orders.
        """
        quote = self._quote(symbol)
        if quantity <= 0:
            raise ToolError("invalid_quantity", "quantity must be at least 1 share")
        if order_type == "limit" and (limit_price is None or limit_price <= 0):
            raise ToolError("missing_limit_price", "a limit order needs a positive limit_price")
        is_open = quote.exchange in self.open_exchanges
        if order_type == "market" and not is_open:
            raise ToolError("market_closed", f"{quote.exchange} is closed; place a limit order or wait until {_NEXT_OPEN[quote.exchange]}")
        crosses = order_type == "market" or (is_open and (limit_price >= quote.price if side == "buy" else limit_price <= quote.price))
        if side == "buy":
            needed = quantity * (quote.price if crosses else limit_price)
            available = self.cash_balance - self._reserved_cash()
            if needed > available + 1e-9:
                raise ToolError("insufficient_funds", f"order needs ${needed:.2f} but only ${available:.2f} is available")
        else:
            lot = self.holdings.get(quote.symbol)
            free = (lot.quantity if lot else 0) - self._reserved_shares(quote.symbol)
            if quantity > free:
                raise ToolError("insufficient_shares", f"cannot sell {quantity} {quote.symbol}: only {free} shares free")
        order_id = self.new_id("ORD")
        order = StockOrder(
            order_id=order_id,
            symbol=quote.symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price if order_type == "limit" else 0.0,
            status="open",
        )
        self.orders[order_id] = order
        if crosses:
            self._fill(order, quote.price)
        return order

    @tool("Order management")
    def get_stock_order_status(self, order_id: str) -> StockOrder:
        """Current state of an order: open, filled (with its price) or cancelled.

        Args:
            order_id: Identifier of the order, as returned when it was placed.
        """
        return self._order(order_id)

    @tool("Order management")
    def list_stock_orders(self, status: Literal["all", "open", "filled", "cancelled"] = "all") -> StockOrderList:
        """The account's order history, optionally only orders in one state.

        Args:
            status: Only list orders in this state; 'all' lists every order.
        """
        orders = [o for o in self.orders.values() if status == "all" or o.status == status]
        return StockOrderList(orders=list(reversed(orders)))

    @tool("Order management")
    def cancel_stock_order(self, order_id: str) -> OrderCancellation:
        """Cancel an open order and release the cash or shares it reserved.

        Args:
            order_id: Identifier of an open order.
        """
        order = self._order(order_id)
        if order.status != "open":
            raise ToolError("order_not_open", f"order '{order_id}' is {order.status} and cannot be cancelled")
        order.status = "cancelled"
        released = round(order.quantity * order.limit_price, 2) if order.side == "buy" else 0.0
        return OrderCancellation(order_id=order_id, status="cancelled", released_cash=released)

    # ------------------------------------------------------------------ watchlist
    @tool("Watchlist")
    def add_stock_to_watchlist(self, symbol: str) -> WatchlistChange:
        """Start following a stock on the watchlist.

        Args:
            symbol: Ticker symbol to watch.
        """
        quote = self._quote(symbol)
        if quote.symbol in self.watchlist:
            raise ToolError("already_watched", f"'{quote.symbol}' is already on the watchlist")
        self.watchlist.append(quote.symbol)
        return WatchlistChange(symbol=quote.symbol, watchlist_size=len(self.watchlist))

    @tool("Watchlist")
    def get_stock_watchlist(self) -> Watchlist:
        """The stocks on the watchlist with their latest quotes."""
        return Watchlist(entries=[self.quotes[s] for s in self.watchlist])

    @tool("Watchlist")
    def remove_stock_from_watchlist(self, symbol: str) -> WatchlistChange:
        """Stop following a stock.

        Args:
            symbol: Ticker symbol on the watchlist.
        """
        if symbol.upper() not in self.watchlist:
            raise ToolError("not_watched", f"'{symbol}' is not on the watchlist")
        self.watchlist.remove(symbol.upper())
        return WatchlistChange(symbol=symbol.upper(), watchlist_size=len(self.watchlist))
