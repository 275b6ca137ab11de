"""Shopping: product search, stock, cart, coupons, checkout, orders, shipment tracking, returns.

Flows: search_products -> product_id -> get_product_details / check_product_stock (gate) ->
add_product_to_cart -> view_shopping_cart -> subtotal; list_shop_coupons -> coupon_code ->
apply_shop_coupon -> checkout_shopping_cart -> order_id -> get_shop_order_details ->
tracking_number -> track_shipment; order_id -> cancel_shop_order (stock returns);
list_shop_orders -> order_id -> get_shop_order_details -> product_id -> request_product_return
-> return_id -> get_return_refund_status.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

OrderStatus = Literal["processing", "shipped", "delivered", "cancelled"]
ReturnReason = Literal["damaged", "wrong_item", "not_as_described", "no_longer_needed"]

_PRODUCTS = [
    ("Wireless Earbuds", "electronics", 59.0, "Bluetooth earbuds with 24 hours of battery and a charging case."),
    ("Noise Cancelling Headphones", "electronics", 199.0, "Over-ear headphones with active noise cancelling."),
    ("USB-C Charger 65W", "electronics", 35.0, "Fast wall charger for laptops and phones."),
    ("Smart Watch", "electronics", 149.0, "Fitness tracking, heart rate and sleep monitoring."),
    ("Portable Bluetooth Speaker", "electronics", 45.0, "Waterproof speaker with 12 hours of playtime."),
    ("Running Shoes", "sports", 89.0, "Lightweight cushioned shoes for road running."),
    ("Yoga Mat", "sports", 25.0, "Non-slip 6 mm mat with a carry strap."),
    ("Insulated Water Bottle", "sports", 19.0, "Keeps drinks cold for 24 hours, 750 ml."),
    ("Camping Tent", "sports", 129.0, "Two-person tent, sets up in five minutes."),
    ("Coffee Grinder", "kitchen", 39.0, "Burr grinder with 15 grind settings."),
    ("Chef's Knife", "kitchen", 65.0, "20 cm stainless steel chef's knife."),
    ("Cast Iron Skillet", "kitchen", 32.0, "Pre-seasoned 26 cm skillet."),
    ("Electric Kettle", "kitchen", 29.0, "1.7 litre kettle with temperature control."),
    ("Desk Lamp", "home", 27.0, "LED lamp with adjustable brightness and USB port."),
    ("Throw Blanket", "home", 34.0, "Soft fleece blanket, 150 x 200 cm."),
    ("Scented Candle Set", "home", 22.0, "Three soy candles: lavender, cedar and citrus."),
    ("Hardcover Notebook", "office", 12.0, "A5 dotted notebook, 200 pages."),
    ("Ergonomic Office Chair", "office", 249.0, "Adjustable lumbar support and armrests."),
]
_COUPONS = [
    ("SAVE10", 10, 0.0, "10% off any order"),
    ("WELCOME15", 15, 30.0, "15% off orders of $30 or more"),
    ("BIGSPEND20", 20, 150.0, "20% off orders of $150 or more"),
    ("SUMMER25", 25, 100.0, "25% off orders of $100 or more"),
    ("FLASH5", 5, 0.0, "5% off any order"),
]
_CITIES = ["Seattle, WA", "Denver, CO", "Austin, TX", "Chicago, IL", "Boston, MA"]
_TODAY = date(2024, 6, 10)


class ProductSummary(BaseModel):
    product_id: str = Field(description="Identifier of the product.")
    name: str = Field(description="Product name.")
    price: float = Field(description="Unit price in USD.")
    rating: float = Field(description="Average customer rating from 1 to 5.")


class ProductMatches(BaseModel):
    """Products matching the search, best rated first."""

    products: list[ProductSummary] = Field(description="Matching products.")


class ProductDetails(BaseModel):
    """Full information about a product."""

    product_id: str = Field(description="Identifier of the product.")
    name: str = Field(description="Product name.")
    product_category: str = Field(description="Department the product belongs to, e.g. kitchen.")
    description: str = Field(description="What the product is.")
    price: float = Field(description="Unit price in USD.")
    rating: float = Field(description="Average customer rating from 1 to 5.")


class StockLevel(BaseModel):
    """How many units can be bought."""

    product_id: str = Field(description="Identifier of the product.")
    in_stock: bool = Field(description="Whether at least one unit is available.")
    quantity_available: int = Field(description="Units available to order.")


class CartLine(BaseModel):
    product_id: str = Field(description="Identifier of the product.")
    name: str = Field(description="Product name.")
    quantity: int = Field(description="Units in the cart.")
    unit_price: float = Field(description="Price of one unit in USD.")
    line_total: float = Field(description="quantity x unit_price in USD.")


class Cart(BaseModel):
    """The shopping cart with its totals."""

    items: list[CartLine] = Field(description="Products in the cart.")
    subtotal: float = Field(description="Sum of the line totals in USD.")
    coupon_code: str = Field(description="Applied coupon code; empty when none.")
    discount: float = Field(description="Discount from the coupon in USD.")
    total: float = Field(description="Amount to pay in USD.")


class Coupon(BaseModel):
    coupon_code: str = Field(description="Code to enter at checkout.")
    description: str = Field(description="What the coupon gives.")
    percent_off: int = Field(description="Discount in percent.")
    min_subtotal: float = Field(description="Smallest cart subtotal the coupon applies to, in USD.")


class CouponList(BaseModel):
    """Coupons the user can apply now."""

    coupons: list[Coupon] = Field(description="Active coupons.")


class OrderLine(BaseModel):
    product_id: str = Field(description="Identifier of the product.")
    name: str = Field(description="Product name.")
    quantity: int = Field(description="Units ordered.")
    unit_price: float = Field(description="Price paid per unit in USD, after any discount.")


class OrderSummary(BaseModel):
    order_id: str = Field(description="Identifier of the order.")
    status: OrderStatus = Field(description="Where the order stands.")
    total: float = Field(description="Amount paid in USD.")
    placed_on: str = Field(description="Date the order was placed, ISO 8601.")


class OrderList(BaseModel):
    """The user's orders, newest first."""

    orders: list[OrderSummary] = Field(description="The orders.")


class OrderDetails(BaseModel):
    """An order with its items and shipment."""

    order_id: str = Field(description="Identifier of the order.")
    status: OrderStatus = Field(description="Where the order stands.")
    items: list[OrderLine] = Field(description="What was ordered.")
    total: float = Field(description="Amount paid in USD.")
    payment_method: str = Field(description="How it was paid.")
    shipping_address: str = Field(description="Where it is shipped.")
    tracking_number: str = Field(description="Carrier tracking number of the shipment.")
    placed_on: str = Field(description="Date the order was placed, ISO 8601.")


class Shipment(BaseModel):
    """Where a shipment is."""

    tracking_number: str = Field(description="Carrier tracking number.")
    order_id: str = Field(description="Order the shipment belongs to.")
    shipment_status: str = Field(description="label_created, in_transit, delivered or cancelled.")
    current_location: str = Field(description="Last scanned location.")
    estimated_delivery: str = Field(description="Expected delivery date, ISO 8601; empty when cancelled.")


class CancelledOrder(BaseModel):
    """An order that was cancelled."""

    order_id: str = Field(description="Identifier of the cancelled order.")
    status: OrderStatus = Field(description="Now 'cancelled'.")
    refund_amount: float = Field(description="Amount refunded in USD.")


class ReturnRequest(BaseModel):
    """A return and its refund."""

    return_id: str = Field(description="Identifier of the return.")
    order_id: str = Field(description="Order the product came from.")
    product_id: str = Field(description="Product being returned.")
    reason: ReturnReason = Field(description="Why it is returned.")
    return_status: str = Field(description="'approved': the refund goes to the original payment method.")
    refund_amount: float = Field(description="Amount refunded in USD.")


class OrderPlaced(BaseModel):
    """A new order created from the cart."""

    order_id: str = Field(description="Identifier of the new order.")
    status: OrderStatus = Field(description="Always 'processing' for a new order.")
    total: float = Field(description="Amount charged in USD.")
    tracking_number: str = Field(description="Carrier tracking number of the shipment.")


class _Order(BaseModel):
    order_id: str
    status: OrderStatus
    items: list[OrderLine]
    total: float
    payment_method: str
    shipping_address: str
    tracking_number: str
    placed_on: date
    shipment_location: str


class _Product(BaseModel):
    product_id: str
    name: str
    product_category: str
    description: str
    price: float
    rating: float
    stock: int


class ShoppingEnv(ToolEnvironment):
    category = "shopping"
    description = "Online shopping: products, stock, cart, coupons, checkout, orders, tracking and returns."

    def setup(self) -> None:
        self.products: dict[str, _Product] = {}
        for i, (name, dept, price, desc) in enumerate(self.rng.sample(_PRODUCTS, 14)):
            pid = self.new_id("PR")
            stock = 0 if i < 2 else self.rng.randint(1, 12)  # two sold-out products
            self.products[pid] = _Product(
                product_id=pid,
                name=name,
                product_category=dept,
                description=desc,
                price=round(price * self.rng.uniform(0.9, 1.1), 2),
                rating=round(self.rng.uniform(3.0, 5.0), 1),
                stock=stock,
            )
        picked = self.rng.sample(_COUPONS, 4)
        self.coupons = {code: Coupon(coupon_code=code, description=d, percent_off=pct, min_subtotal=m) for code, pct, m, d in picked}
        self.expired_coupons = {picked[-1][0]}
        self.cart: dict[str, int] = {}
        self.cart_coupon = ""
        self.gift_card_balance = float(self.rng.randrange(20, 80))
        self.address = f"{self.rng.randint(10, 999)} Pine Street, {self.rng.choice(_CITIES)}"
        self.orders: dict[str, _Order] = {}
        self.returns: dict[str, ReturnRequest] = {}
        # order history: one delivered (returnable), one shipped (not cancellable) and one placed
        # yesterday, still processing (cancellable): a user has something to cancel and something to return
        in_stock = [p for p in self.products.values() if p.stock > 0]
        for status, days_ago in (("delivered", 12), ("shipped", 2), ("processing", 1)):
            chosen = self.rng.sample(in_stock, 2)
            lines = [OrderLine(product_id=p.product_id, name=p.name, quantity=self.rng.randint(1, 2), unit_price=p.price) for p in chosen]
            self._create_order(lines, "credit_card", self.address, status, _TODAY - timedelta(days=days_ago))

    def user_values(self) -> dict[str, list]:
        return {
            "query": sorted(
                {p.product_category for p in self.products.values()} | {p.name.split()[-1].lower() for p in self.products.values()}
            ),
            "shipping_address": [self.address, "42 Elm Road, Portland, OR"],
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """A processing order to cancel, a delivered one to return from, a product of that order."""
        wanted = {"cancel_shop_order": "processing", "request_product_return": "delivered"}.get(tool)
        if wanted is not None and param == "order_id":
            order = self.orders.get(value)
            return order is not None and order.status == wanted
        if tool == "request_product_return" and param == "product_id" and chosen and chosen.get("order_id") in self.orders:
            return any(line.product_id == value for line in self.orders[chosen["order_id"]].items)
        return True

    # ------------------------------------------------------------------ helpers
    def _product(self, product_id: str) -> _Product:
        return self.lookup(self.products, product_id, "unknown_product", f"no product with id '{product_id}'")

    def _order(self, order_id: str) -> _Order:
        return self.lookup(self.orders, order_id, "unknown_order", f"no order with id '{order_id}'")

    def _create_order(self, lines: list[OrderLine], payment: str, address: str, status: OrderStatus, placed: date) -> _Order:
        order = _Order(
            order_id=self.new_id("OR"),
            status=status,
            items=lines,
            total=round(sum(line.unit_price * line.quantity for line in lines), 2),
            payment_method=payment,
            shipping_address=address,
            tracking_number=self.new_id("1Z", 10),
            placed_on=placed,
            shipment_location={"processing": "Warehouse, Reno NV", "shipped": "Sorting center, Salt Lake City UT"}.get(status, address),
        )
        self.orders[order.order_id] = order
        return order

    def _cart(self) -> Cart:
        lines = []
        for pid, q in self.cart.items():
            p = self.products[pid]
            lines.append(CartLine(product_id=pid, name=p.name, quantity=q, unit_price=p.price, line_total=round(q * p.price, 2)))
        subtotal = round(sum(line.line_total for line in lines), 2)
        coupon = self.coupons.get(self.cart_coupon)
        if coupon is not None and subtotal < coupon.min_subtotal:
            self.cart_coupon, coupon = "", None  # the cart shrank below the coupon's minimum
        discount = round(subtotal * coupon.percent_off / 100, 2) if coupon else 0.0
        return Cart(items=lines, subtotal=subtotal, coupon_code=self.cart_coupon, discount=discount, total=round(subtotal - discount, 2))

    def _summary(self, o: _Order) -> OrderSummary:
        return OrderSummary(order_id=o.order_id, status=o.status, total=o.total, placed_on=o.placed_on.isoformat())

    # ------------------------------------------------------------------ product search
    @tool("Product search")
    def search_products(self, query: str, max_price: float | None = None) -> ProductMatches:
        """Search the catalogue by words in the product name, department or description.

        Args:
            query: Words to look for, e.g. 'headphones' or 'kitchen'.
            max_price: Only return products at or below this unit price in USD.
        """
        words = query.lower().split()
        hits = [
            p
            for p in self.products.values()
            if any(w in f"{p.name} {p.product_category} {p.description}".lower() for w in words)
            and (max_price is None or p.price <= max_price)
        ]
        hits.sort(key=lambda p: -p.rating)
        return ProductMatches(products=[ProductSummary(product_id=p.product_id, name=p.name, price=p.price, rating=p.rating) for p in hits])

    @tool("Product search")
    def get_product_details(self, product_id: str) -> ProductDetails:
        """Full description, department, price and rating of a product.

        Args:
            product_id: Identifier of the product.
        """
        return ProductDetails(**self._product(product_id).model_dump(exclude={"stock"}))

    @tool("Product search")
    def check_product_stock(self, product_id: str) -> StockLevel:
        """How many units of a product are available to order.

        Args:
            product_id: Identifier of the product.
        """
        p = self._product(product_id)
        return StockLevel(product_id=product_id, in_stock=p.stock > 0, quantity_available=p.stock)

    # ------------------------------------------------------------------ cart and checkout
    @tool("Cart and checkout")
    def add_product_to_cart(self, product_id: str, quantity: int = 1) -> Cart:
        """Put units of a product in the shopping cart; fails when not enough are in stock.

        Args:
            product_id: Identifier of the product.
            quantity: How many units to add.
        """
        p = self._product(product_id)
        if quantity < 1:
            raise ToolError("invalid_quantity", "quantity must be at least 1")
        wanted = self.cart.get(product_id, 0) + quantity
        if p.stock == 0:
            raise ToolError("out_of_stock", f"{p.name} is sold out")
        if wanted > p.stock:
            raise ToolError("insufficient_stock", f"only {p.stock} units of {p.name} available, cart would hold {wanted}")
        self.cart[product_id] = wanted
        return self._cart()

    @tool("Cart and checkout")
    def view_shopping_cart(self) -> Cart:
        """The products in the shopping cart with the subtotal, coupon discount and total."""
        return self._cart()

    @tool("Cart and checkout")
    def list_shop_coupons(self) -> CouponList:
        """Coupons that are currently valid, with their minimum order subtotal."""
        return CouponList(coupons=[c for code, c in self.coupons.items() if code not in self.expired_coupons])

    @tool("Cart and checkout")
    def apply_shop_coupon(self, coupon_code: str) -> Cart:
        """Apply a coupon to the shopping cart; the cart subtotal must meet the coupon's minimum.

        Args:
            coupon_code: The coupon code, e.g. 'SAVE10'.
        """
        code = coupon_code.strip().upper()
        if code not in self.coupons:
            raise ToolError("unknown_coupon", f"coupon '{coupon_code}' does not exist")
        if code in self.expired_coupons:
            raise ToolError("coupon_expired", f"coupon '{code}' has expired")
        if not self.cart:
            raise ToolError("empty_cart", "add products to the cart before applying a coupon")
        subtotal = self._cart().subtotal
        minimum = self.coupons[code].min_subtotal
        if subtotal < minimum:
            raise ToolError("minimum_not_met", f"coupon '{code}' needs a subtotal of ${minimum:.2f}, the cart has ${subtotal:.2f}")
        self.cart_coupon = code
        return self._cart()

    @tool("Cart and checkout")
    def checkout_shopping_cart(self, shipping_address: str, payment_method: Literal["credit_card", "gift_card"]) -> OrderPlaced:
        """Place an order for everything in the cart; stock is reserved and the cart emptied.

        Args:
            shipping_address: Street address to ship to.
            payment_method: 'credit_card', or 'gift_card' (the gift card balance must cover the total).
        """
        if not self.cart:
            raise ToolError("empty_cart", "the cart is empty")
        cart = self._cart()
        for line in cart.items:
            if self.products[line.product_id].stock < line.quantity:
                raise ToolError("insufficient_stock", f"{line.name} no longer has {line.quantity} units in stock")
        if payment_method == "gift_card":
            if self.gift_card_balance < cart.total:
                raise ToolError(
                    "insufficient_funds", f"gift card balance ${self.gift_card_balance:.2f} is below the total ${cart.total:.2f}"
                )
            self.gift_card_balance = round(self.gift_card_balance - cart.total, 2)
        factor = cart.total / cart.subtotal
        lines = [
            OrderLine(product_id=line.product_id, name=line.name, quantity=line.quantity, unit_price=round(line.unit_price * factor, 2))
            for line in cart.items
        ]
        for line in cart.items:
            self.products[line.product_id].stock -= line.quantity
        order = self._create_order(lines, payment_method, shipping_address, "processing", _TODAY)
        order.total = cart.total
        self.cart, self.cart_coupon = {}, ""
        return OrderPlaced(order_id=order.order_id, status=order.status, total=order.total, tracking_number=order.tracking_number)

    # ------------------------------------------------------------------ orders and tracking
    @tool("Orders and tracking")
    def list_shop_orders(self, status: OrderStatus | None = None) -> OrderList:
        """The user's orders, newest first, optionally only those with one status.

        Args:
            status: Only list orders with this status.
        """
        orders = [o for o in reversed(list(self.orders.values())) if status is None or o.status == status]
        return OrderList(orders=[self._summary(o) for o in orders])

    @tool("Orders and tracking")
    def get_shop_order_details(self, order_id: str) -> OrderDetails:
        """An order's items, total, payment, shipping address and tracking number.

        Args:
            order_id: Identifier of the order.
        """
        o = self._order(order_id)
        return OrderDetails(**o.model_dump(exclude={"placed_on", "shipment_location"}), placed_on=o.placed_on.isoformat())

    @tool("Orders and tracking")
    def track_shipment(self, tracking_number: str) -> Shipment:
        """Where a shipment is and when it should arrive.

        Args:
            tracking_number: Carrier tracking number of the shipment.
        """
        o = next((o for o in self.orders.values() if o.tracking_number == tracking_number), None)
        if o is None:
            raise ToolError("unknown_tracking_number", f"no shipment with tracking number '{tracking_number}'")
        state, days = {"processing": ("label_created", 5), "shipped": ("in_transit", 2), "delivered": ("delivered", 0)}.get(
            o.status, ("cancelled", None)
        )
        eta = "" if days is None else (o.placed_on + timedelta(days=days + (3 if o.status != "processing" else 0))).isoformat()
        return Shipment(
            tracking_number=tracking_number,
            order_id=o.order_id,
            shipment_status=state,
            current_location=o.shipment_location,
            estimated_delivery=eta,
        )

    @tool("Orders and tracking")
    def cancel_shop_order(self, order_id: str) -> CancelledOrder:
        """Cancel an order that has not shipped yet; its items go back in stock and it is refunded.

        Args:
            order_id: Identifier of the order to cancel.
        """
        o = self._order(order_id)
        if o.status != "processing":
            raise ToolError("cannot_cancel", f"order {order_id} is {o.status}; only processing orders can be cancelled")
        o.status = "cancelled"
        for line in o.items:
            self.products[line.product_id].stock += line.quantity
        if o.payment_method == "gift_card":
            self.gift_card_balance = round(self.gift_card_balance + o.total, 2)
        return CancelledOrder(order_id=order_id, status=o.status, refund_amount=o.total)

    # ------------------------------------------------------------------ returns and refunds
    @tool("Returns and refunds")
    def request_product_return(self, order_id: str, product_id: str, reason: ReturnReason) -> ReturnRequest:
        """Return a product from a delivered order for a refund of what was paid for it.

        Args:
            order_id: Identifier of the delivered order.
            product_id: Identifier of the product to return; it must be part of the order.
            reason: Why the product is returned.
        """
        o = self._order(order_id)
        if o.status != "delivered":
            raise ToolError("not_delivered", f"order {order_id} is {o.status}; only delivered orders can be returned")
        line = next((line for line in o.items if line.product_id == product_id), None)
        if line is None:
            raise ToolError("product_not_in_order", f"product '{product_id}' is not part of order {order_id}")
        if any(r.order_id == order_id and r.product_id == product_id for r in self.returns.values()):
            raise ToolError("already_returned", f"a return for product '{product_id}' of order {order_id} already exists")
        ret = ReturnRequest(
            return_id=self.new_id("RA"),
            order_id=order_id,
            product_id=product_id,
            reason=reason,
            return_status="approved",
            refund_amount=round(line.unit_price * line.quantity, 2),
        )
        self.returns[ret.return_id] = ret
        return ret

    @tool("Returns and refunds")
    def get_return_refund_status(self, return_id: str) -> ReturnRequest:
        """The status of a return and the refund it gives.

        Args:
            return_id: Identifier of the return.
        """
        return self.lookup(self.returns, return_id, "unknown_return", f"no return with id '{return_id}'")
