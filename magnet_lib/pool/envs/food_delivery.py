"""Food delivery: restaurants, menus, a cart, orders, delivery tracking, tips and ratings.

Flows: search_restaurants -> restaurant_id -> get_restaurant_menu -> item_id ->
check_menu_item_availability (gate) -> add_item_to_food_cart -> view_food_cart / remove_item_from_food_cart;
estimate_delivery_fee(restaurant_id, delivery_address) -> place_food_order -> order_id ->
track_food_order / cancel_food_order; place_food_order (total) -> calculate_food_tip (tip_amount)
-> add_tip_to_food_order; track_food_order (delivered) -> rate_food_order -> get_restaurant_reviews.

Time passes with tracking: every track_food_order call moves an order one stage on
(placed -> preparing -> out_for_delivery -> delivered), so a later rating finds it delivered.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

# cuisine -> (restaurant name stems, dishes with a typical price in USD)
_CUISINES = {
    "italian": (
        ["Trattoria Lume", "Nonna Vera"],
        [("Margherita Pizza", 14.0), ("Lasagna", 16.5), ("Tiramisu", 7.0), ("Caprese Salad", 9.5), ("Penne Arrabbiata", 13.0)],
    ),
    "japanese": (
        ["Kumo Sushi", "Ramen Hoshi"],
        [("Salmon Nigiri", 8.0), ("Tonkotsu Ramen", 15.0), ("Gyoza", 6.5), ("Miso Soup", 4.0), ("Chicken Katsu", 14.0)],
    ),
    "mexican": (
        ["Casa Amarilla", "Taqueria Sol"],
        [("Carnitas Tacos", 11.0), ("Chicken Burrito", 12.5), ("Guacamole", 6.0), ("Churros", 5.5), ("Veggie Quesadilla", 10.0)],
    ),
    "indian": (
        ["Saffron House", "Masala Gate"],
        [("Butter Chicken", 16.0), ("Chana Masala", 12.0), ("Garlic Naan", 3.5), ("Lamb Biryani", 18.0), ("Mango Lassi", 4.5)],
    ),
    "thai": (
        ["Baan Siam", "Lotus Thai"],
        [("Pad Thai", 13.0), ("Green Curry", 14.5), ("Tom Yum Soup", 9.0), ("Spring Rolls", 6.0), ("Sticky Rice Mango", 7.0)],
    ),
    "vegan": (["Green Fork"], [("Buddha Bowl", 13.5), ("Lentil Burger", 12.0), ("Kale Caesar", 10.0), ("Vegan Brownie", 5.0)]),
}
# city -> (latitude, longitude, streets the user may live on)
_CITIES = {
    "Oakland": (37.8044, -122.2712, ["Harbor Street", "Lakeshore Avenue", "Grand Avenue"]),
    "Berkeley": (37.8715, -122.2730, ["Shattuck Avenue", "College Avenue"]),
    "Alameda": (37.7652, -122.2416, ["Park Street", "Central Avenue"]),
}
_STAGES = ["placed", "preparing", "out_for_delivery", "delivered"]
_COURIERS = ["Dana", "Luis", "Priya", "Tom", "Mei", "Samir"]
_MAX_DELIVERY_MILES = 8.0


class RestaurantSummary(BaseModel):
    restaurant_id: str = Field(description="Identifier of the restaurant.")
    name: str = Field(description="Name of the restaurant.")
    cuisine: str = Field(description="Cuisine served.")
    city: str = Field(description="City the restaurant is in.")
    average_rating: float = Field(description="Average customer rating, 1 to 5 stars.")
    is_open: bool = Field(description="Whether the restaurant accepts orders now.")


class RestaurantList(BaseModel):
    """Restaurants matching the search."""

    restaurants: list[RestaurantSummary] = Field(description="Matching restaurants, best rated first.")


class MenuItem(BaseModel):
    item_id: str = Field(description="Identifier of the dish.")
    name: str = Field(description="Name of the dish.")
    price: float = Field(description="Price of one portion in USD.")


class Menu(BaseModel):
    """A restaurant's menu."""

    restaurant_id: str = Field(description="Identifier of the restaurant.")
    items: list[MenuItem] = Field(description="Dishes on the menu.")


class ItemAvailability(BaseModel):
    """Whether a dish can be ordered now."""

    item_id: str = Field(description="Identifier of the dish.")
    available: bool = Field(description="True when at least one portion is left.")
    remaining_portions: int = Field(description="Portions the kitchen can still make today.")


class CartLine(BaseModel):
    item_id: str = Field(description="Identifier of the dish.")
    name: str = Field(description="Name of the dish.")
    quantity: int = Field(description="Portions in the cart.")
    line_total: float = Field(description="Price of these portions in USD.")


class FoodCart(BaseModel):
    """The current cart; it holds dishes from one restaurant at a time."""

    restaurant_id: str = Field(description="Restaurant the cart orders from; empty when the cart is empty.")
    items: list[CartLine] = Field(description="Dishes in the cart.")
    subtotal: float = Field(description="Price of the dishes in USD, before delivery.")


class DeliveryEstimate(BaseModel):
    """Delivery fee and time from a restaurant to an address."""

    restaurant_id: str = Field(description="Identifier of the restaurant.")
    delivery_address: str = Field(description="Where the food would be delivered.")
    distance_miles: float = Field(description="Distance from the restaurant in miles.")
    delivery_fee: float = Field(description="Fee for delivering there, in USD.")
    estimated_minutes: int = Field(description="Expected minutes from order to door.")


class FoodOrder(BaseModel):
    """A placed order."""

    order_id: str = Field(description="Identifier of the order.")
    restaurant_id: str = Field(description="Restaurant preparing it.")
    total: float = Field(description="Amount charged in USD: dishes plus delivery fee (plus tip once added).")
    status: str = Field(description="Order stage: placed, preparing, out_for_delivery, delivered or cancelled.")
    estimated_minutes: int = Field(description="Expected minutes until delivery.")


class OrderTracking(BaseModel):
    """Where an order is now."""

    order_id: str = Field(description="Identifier of the order.")
    status: str = Field(description="Order stage: placed, preparing, out_for_delivery, delivered or cancelled.")
    courier_name: str = Field(description="Courier carrying it; empty before pickup.")
    minutes_remaining: int = Field(description="Minutes until delivery; 0 once delivered or cancelled.")


class FoodOrderCancellation(BaseModel):
    """Outcome of cancelling an order."""

    order_id: str = Field(description="Identifier of the cancelled order.")
    status: Literal["cancelled"] = Field(description="New stage of the order.")
    refunded_amount: float = Field(description="Amount returned to the payment method, in USD.")


class TipSuggestion(BaseModel):
    """A tip computed as a share of an order total."""

    tip_amount: float = Field(description="Tip in USD, rounded to cents.")
    tip_percent: float = Field(description="The percentage used.")


class TipReceipt(BaseModel):
    """The tip added to an order."""

    order_id: str = Field(description="Identifier of the order.")
    tip_amount: float = Field(description="Tip added in USD.")
    total: float = Field(description="New amount charged in USD, tip included.")


class OrderRating(BaseModel):
    """A rating left for a delivered order."""

    order_id: str = Field(description="Identifier of the rated order.")
    restaurant_id: str = Field(description="Restaurant that was rated.")
    stars: int = Field(description="Stars given, 1 to 5.")


class Review(BaseModel):
    stars: int = Field(description="Stars given, 1 to 5.")
    comment: str = Field(description="What the customer wrote.")


class RestaurantReviews(BaseModel):
    """Customer reviews of a restaurant."""

    restaurant_id: str = Field(description="Identifier of the restaurant.")
    average_rating: float = Field(description="Average stars over all reviews.")
    reviews: list[Review] = Field(description="Reviews, newest first.")


class _Restaurant(BaseModel):
    restaurant_id: str
    name: str
    cuisine: str
    city: str
    latitude: float
    longitude: float
    is_open: bool
    item_ids: list[str]
    reviews: list[Review]


class _Item(BaseModel):
    item_id: str
    restaurant_id: str
    name: str
    price: float
    remaining_portions: int


class _Order(BaseModel):
    order_id: str
    restaurant_id: str
    total: float
    payment_method: str
    stage: str
    courier_name: str
    estimated_minutes: int
    tip_amount: float = 0.0
    rated: bool = False


class FoodDeliveryEnv(ToolEnvironment):
    category = "food_delivery"
    description = "Finding restaurants, ordering food for delivery, tracking, tipping and rating orders."

    def setup(self) -> None:
        rng = self.rng
        self.addresses: dict[str, tuple[float, float]] = {}
        for city, (lat, lon, streets) in _CITIES.items():
            for street in streets:
                address = f"{rng.randint(2, 980)} {street}, {city}"
                self.addresses[address] = (lat + rng.uniform(-0.02, 0.02), lon + rng.uniform(-0.02, 0.02))
        self.restaurants: dict[str, _Restaurant] = {}
        self.items: dict[str, _Item] = {}
        comments = ["Arrived hot, tasty.", "A bit late but good.", "Generous portions.", "Would order again.", "Too salty."]
        for cuisine, (names, dishes) in _CUISINES.items():
            for name in names:
                city = rng.choice(sorted(_CITIES))
                lat, lon, _ = _CITIES[city]
                rid = self.new_id("RS")
                restaurant = _Restaurant(
                    restaurant_id=rid,
                    name=name,
                    cuisine=cuisine,
                    city=city,
                    latitude=lat + rng.uniform(-0.03, 0.03),
                    longitude=lon + rng.uniform(-0.03, 0.03),
                    is_open=rng.random() < 0.8,
                    item_ids=[],
                    reviews=[Review(stars=rng.randint(3, 5), comment=rng.choice(comments)) for _ in range(rng.randint(1, 3))],
                )
                for dish, price in rng.sample(dishes, 4):
                    iid = self.new_id("IT")
                    portions = 0 if rng.random() < 0.15 else rng.randint(3, 20)
                    self.items[iid] = _Item(
                        item_id=iid,
                        restaurant_id=rid,
                        name=dish,
                        price=round(price * rng.uniform(0.9, 1.15), 2),
                        remaining_portions=portions,
                    )
                    restaurant.item_ids.append(iid)
                self.restaurants[rid] = restaurant
        self.cart: dict[str, int] = {}
        self.wallet_balance = float(rng.randrange(25, 80))
        self.orders: dict[str, _Order] = {}
        # lunch, delivered an hour ago and neither tipped nor rated yet: an order a user may rate or tip
        lunch = self.restaurants[rng.choice(sorted(self.restaurants))]
        order_id = self.new_id("FO")
        self.orders[order_id] = _Order(
            order_id=order_id,
            restaurant_id=lunch.restaurant_id,
            total=round(sum(self.items[i].price for i in rng.sample(lunch.item_ids, 2)) + 2.99, 2),
            payment_method="card",
            stage="delivered",
            courier_name=rng.choice(_COURIERS),
            estimated_minutes=0,
        )

    def user_values(self) -> dict[str, list]:
        return {
            "cuisine": sorted(_CUISINES),
            "city": sorted(_CITIES),
            "delivery_address": sorted(self.addresses),
            "tip_percent": [10.0, 15.0, 18.0, 20.0],
            "tip_amount": [2.0, 3.5, 5.0],
            "stars": [3, 4, 5],
            "comment": ["Great food, fast delivery.", "The noodles were cold."],
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """A delivered order to rate, one not tipped yet to tip, one still placed or preparing to cancel."""
        if param != "order_id" or tool not in ("rate_food_order", "add_tip_to_food_order", "cancel_food_order"):
            return True
        order = self.orders.get(value)
        if order is None:
            return False
        if tool == "rate_food_order":
            return order.stage == "delivered"
        if tool == "cancel_food_order":
            return order.stage in ("placed", "preparing")
        return order.stage != "cancelled" and order.tip_amount <= 0

    # ------------------------------------------------------------------ helpers
    def _restaurant(self, restaurant_id: str) -> _Restaurant:
        return self.lookup(self.restaurants, restaurant_id, "unknown_restaurant", f"no restaurant with id '{restaurant_id}'")

    def _item(self, item_id: str) -> _Item:
        return self.lookup(self.items, item_id, "unknown_item", f"no menu item with id '{item_id}'")

    def _order(self, order_id: str) -> _Order:
        return self.lookup(self.orders, order_id, "unknown_order", f"no food order with id '{order_id}'")

    def _rating(self, restaurant: _Restaurant) -> float:
        return round(sum(r.stars for r in restaurant.reviews) / len(restaurant.reviews), 2)

    def _cart_view(self) -> FoodCart:
        lines = []
        for item_id, quantity in self.cart.items():
            item = self.items[item_id]
            lines.append(CartLine(item_id=item_id, name=item.name, quantity=quantity, line_total=round(item.price * quantity, 2)))
        restaurant_id = self.items[next(iter(self.cart))].restaurant_id if self.cart else ""
        return FoodCart(restaurant_id=restaurant_id, items=lines, subtotal=round(sum(l.line_total for l in lines), 2))

    def _estimate(self, restaurant: _Restaurant, delivery_address: str) -> DeliveryEstimate:
        if delivery_address not in self.addresses:
            raise ToolError(
                "address_not_served", f"'{delivery_address}' is not in the delivery area; give a street address in {', '.join(_CITIES)}"
            )
        lat, lon = self.addresses[delivery_address]
        miles = round(math.hypot((lat - restaurant.latitude) * 69.0, (lon - restaurant.longitude) * 54.6), 2)
        if miles > _MAX_DELIVERY_MILES:
            raise ToolError("out_of_range", f"{restaurant.name} does not deliver {miles} miles away (limit {_MAX_DELIVERY_MILES})")
        return DeliveryEstimate(
            restaurant_id=restaurant.restaurant_id,
            delivery_address=delivery_address,
            distance_miles=miles,
            delivery_fee=round(1.99 + 0.75 * miles, 2),
            estimated_minutes=20 + round(miles * 4),
        )

    # ------------------------------------------------------------------ restaurant search
    @tool("Restaurant search")
    def search_restaurants(self, cuisine: str, city: str | None = None, open_now: bool = False) -> RestaurantList:
        """Find restaurants that deliver a cuisine, optionally in one city or only those open now.

        Args:
            cuisine: Kind of food, e.g. 'thai' or 'italian'.
            city: Only restaurants in this city.
            open_now: Only restaurants that accept orders right now.
        """
        hits = [
            RestaurantSummary(
                restaurant_id=r.restaurant_id,
                name=r.name,
                cuisine=r.cuisine,
                city=r.city,
                average_rating=self._rating(r),
                is_open=r.is_open,
            )
            for r in self.restaurants.values()
            if cuisine.lower() in r.cuisine and (city is None or r.city.lower() == city.lower()) and (r.is_open or not open_now)
        ]
        return RestaurantList(restaurants=sorted(hits, key=lambda h: -h.average_rating))

    @tool("Restaurant search")
    def get_restaurant_menu(self, restaurant_id: str) -> Menu:
        """The dishes a restaurant offers, with prices.

        Args:
            restaurant_id: Identifier of the restaurant.
        """
        restaurant = self._restaurant(restaurant_id)
        items = [MenuItem(item_id=i, name=self.items[i].name, price=self.items[i].price) for i in restaurant.item_ids]
        return Menu(restaurant_id=restaurant_id, items=items)

    @tool("Restaurant search")
    def check_menu_item_availability(self, item_id: str) -> ItemAvailability:
        """Whether a dish is still available today and how many portions are left.

        Args:
            item_id: Identifier of the dish, from a menu.
        """
        item = self._item(item_id)
        return ItemAvailability(item_id=item_id, available=item.remaining_portions > 0, remaining_portions=item.remaining_portions)

    @tool("Restaurant search")
    def get_restaurant_reviews(self, restaurant_id: str) -> RestaurantReviews:
        """Customer reviews and the average rating of a restaurant.

        Args:
            restaurant_id: Identifier of the restaurant.
        """
        restaurant = self._restaurant(restaurant_id)
        return RestaurantReviews(
            restaurant_id=restaurant_id, average_rating=self._rating(restaurant), reviews=list(reversed(restaurant.reviews))
        )

    # ------------------------------------------------------------------ cart and ordering
    @tool("Cart and ordering")
    def add_item_to_food_cart(self, item_id: str, quantity: int = 1) -> FoodCart:
        """Put portions of a dish in the cart; the cart holds dishes of one restaurant only.

        Args:
            item_id: Identifier of the dish, from a menu.
            quantity: Number of portions to add.
        """
        item = self._item(item_id)
        if quantity < 1:
            raise ToolError("invalid_quantity", "quantity must be at least 1")
        current = self._cart_view().restaurant_id
        if current and current != item.restaurant_id:
            raise ToolError("cart_conflict", f"the cart holds dishes from {self.restaurants[current].name}; remove them first")
        wanted = self.cart.get(item_id, 0) + quantity
        if wanted > item.remaining_portions:
            raise ToolError("item_unavailable", f"only {item.remaining_portions} portions of {item.name} are left")
        self.cart[item_id] = wanted
        return self._cart_view()

    @tool("Cart and ordering")
    def view_food_cart(self) -> FoodCart:
        """The dishes in the cart and their subtotal."""
        return self._cart_view()

    @tool("Cart and ordering")
    def remove_item_from_food_cart(self, item_id: str) -> FoodCart:
        """Take a dish out of the cart entirely.

        Args:
            item_id: Identifier of a dish in the cart.
        """
        if item_id not in self.cart:
            raise ToolError("not_in_cart", f"item '{item_id}' is not in the cart")
        del self.cart[item_id]
        return self._cart_view()

    @tool("Cart and ordering")
    def estimate_delivery_fee(self, restaurant_id: str, delivery_address: str) -> DeliveryEstimate:
        """Delivery fee, distance and time from a restaurant to an address.

        Args:
            restaurant_id: Identifier of the restaurant.
            delivery_address: Street address to deliver to, e.g. '12 Harbor Street, Oakland'.
        """
        return self._estimate(self._restaurant(restaurant_id), delivery_address)

    @tool("Cart and ordering")
    def place_food_order(self, delivery_address: str, payment_method: Literal["card", "wallet", "cash"]) -> FoodOrder:
        """Order the cart for delivery; the total is the dishes plus the delivery fee.

        Args:
            delivery_address: Street address to deliver to.
            payment_method: 'card', 'wallet' (the app's prepaid balance) or 'cash' on delivery.
        """
        cart = self._cart_view()
        if not cart.items:
            raise ToolError("empty_cart", "the cart is empty; add dishes first")
        restaurant = self.restaurants[cart.restaurant_id]
        if not restaurant.is_open:
            raise ToolError("restaurant_closed", f"{restaurant.name} is not taking orders now")
        estimate = self._estimate(restaurant, delivery_address)
        total = round(cart.subtotal + estimate.delivery_fee, 2)
        if payment_method == "wallet":
            if total > self.wallet_balance:
                raise ToolError("insufficient_funds", f"wallet balance ${self.wallet_balance:.2f} is less than the total ${total:.2f}")
            self.wallet_balance = round(self.wallet_balance - total, 2)
        for line in cart.items:
            self.items[line.item_id].remaining_portions -= line.quantity
        self.cart = {}
        order_id = self.new_id("FO")
        self.orders[order_id] = _Order(
            order_id=order_id,
            restaurant_id=restaurant.restaurant_id,
            total=total,
            payment_method=payment_method,
            stage="placed",
            courier_name=self.rng.choice(_COURIERS),
            estimated_minutes=estimate.estimated_minutes,
        )
        return FoodOrder(
            order_id=order_id,
            restaurant_id=restaurant.restaurant_id,
            total=total,
            status="placed",
            estimated_minutes=estimate.estimated_minutes,
        )

    @tool("Delivery tracking")
    def track_food_order(self, order_id: str) -> OrderTracking:
        """Where an order is now: its stage, its courier and the minutes left.

        Args:
            order_id: Identifier of the food order.
        """
        order = self._order(order_id)
        if order.stage in _STAGES[:-1]:  # time passes between checks
            order.stage = _STAGES[_STAGES.index(order.stage) + 1]
        left = {"placed": 1.0, "preparing": 0.75, "out_for_delivery": 0.35}.get(order.stage, 0.0)
        courier = order.courier_name if order.stage in ("out_for_delivery", "delivered") else ""
        return OrderTracking(
            order_id=order_id, status=order.stage, courier_name=courier, minutes_remaining=round(order.estimated_minutes * left)
        )

    @tool("Delivery tracking")
    def cancel_food_order(self, order_id: str) -> FoodOrderCancellation:
        """Cancel an order before a courier picks it up; the amount paid is refunded.

        Args:
            order_id: Identifier of the food order.
        """
        order = self._order(order_id)
        if order.stage not in ("placed", "preparing"):
            raise ToolError("cannot_cancel", f"order '{order_id}' is {order.stage} and can no longer be cancelled")
        order.stage = "cancelled"
        if order.payment_method == "wallet":
            self.wallet_balance = round(self.wallet_balance + order.total, 2)
        refunded = 0.0 if order.payment_method == "cash" else order.total
        return FoodOrderCancellation(order_id=order_id, status="cancelled", refunded_amount=refunded)

    # ------------------------------------------------------------------ tips and ratings
    @tool("Tips and ratings")
    def calculate_food_tip(self, total: float, tip_percent: float) -> TipSuggestion:
        """Work out a tip as a percentage of an order total.

        Args:
            total: The order total in USD.
            tip_percent: Tip as a percentage of the total, e.g. 15.
        """
        if total < 0 or not 0 <= tip_percent <= 100:
            raise ToolError("invalid_amount", "total must not be negative and tip_percent must be between 0 and 100")
        return TipSuggestion(tip_amount=round(total * tip_percent / 100, 2), tip_percent=tip_percent)

    @tool("Tips and ratings")
    def add_tip_to_food_order(self, order_id: str, tip_amount: float) -> TipReceipt:
        """Add a tip for the courier to an order.

        Args:
            order_id: Identifier of the food order.
            tip_amount: Tip in USD.
        """
        order = self._order(order_id)
        if order.stage == "cancelled":
            raise ToolError("order_cancelled", f"order '{order_id}' was cancelled")
        if order.tip_amount > 0:
            raise ToolError("already_tipped", f"order '{order_id}' already has a ${order.tip_amount:.2f} tip")
        if tip_amount <= 0:
            raise ToolError("invalid_amount", "tip_amount must be positive")
        if order.payment_method == "wallet":
            if tip_amount > self.wallet_balance:
                raise ToolError("insufficient_funds", f"wallet balance ${self.wallet_balance:.2f} does not cover the tip")
            self.wallet_balance = round(self.wallet_balance - tip_amount, 2)
        order.tip_amount = round(tip_amount, 2)
        order.total = round(order.total + order.tip_amount, 2)
        return TipReceipt(order_id=order_id, tip_amount=order.tip_amount, total=order.total)

    @tool("Tips and ratings")
    def rate_food_order(self, order_id: str, stars: int, comment: str = "") -> OrderRating:
        """Rate a delivered order; the rating becomes a review of the restaurant.

        Args:
            order_id: Identifier of a delivered food order.
            stars: 1 (poor) to 5 (excellent).
            comment: Optional words about the food or delivery.
        """
        order = self._order(order_id)
        if order.stage != "delivered":
            raise ToolError("not_delivered", f"order '{order_id}' is {order.stage}; only delivered orders can be rated")
        if order.rated:
            raise ToolError("already_rated", f"order '{order_id}' was already rated")
        if not 1 <= stars <= 5:
            raise ToolError("invalid_rating", "stars must be between 1 and 5")
        order.rated = True
        self.restaurants[order.restaurant_id].reviews.append(Review(stars=stars, comment=comment))
        return OrderRating(order_id=order_id, restaurant_id=order.restaurant_id, stars=stars)
