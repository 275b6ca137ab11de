from magnet_lib.pool.envs.food_delivery import FoodDeliveryEnv
from tests.envs_support import ToolRecorder

HOME = "206 Harbor Street, Oakland"  # an address of seed 3's world


def _open_restaurant_with_dishes(r, cuisine):
    for found in r.ok("search_restaurants", cuisine=cuisine, open_now=True)["restaurants"]:
        menu = r.ok("get_restaurant_menu", restaurant_id=found["restaurant_id"])["items"]
        ready = [i for i in menu if r.ok("check_menu_item_availability", item_id=i["item_id"])["available"]]
        if len(ready) >= 2:
            return found["restaurant_id"], ready
    raise AssertionError(f"no open {cuisine} restaurant with two available dishes")


def test_order_track_tip_and_rate():
    env = FoodDeliveryEnv(seed=3)
    r = ToolRecorder(env)
    assert HOME in env.user_values()["delivery_address"]
    restaurant_id, dishes = _open_restaurant_with_dishes(r, "italian")
    first, second = dishes[0], dishes[1]
    cart = r.ok("add_item_to_food_cart", item_id=first["item_id"], quantity=2)
    cart = r.ok("add_item_to_food_cart", item_id=second["item_id"])
    assert cart["restaurant_id"] == restaurant_id
    assert abs(cart["subtotal"] - (2 * first["price"] + second["price"])) < 0.01
    cart = r.ok("remove_item_from_food_cart", item_id=second["item_id"])
    assert [l["item_id"] for l in r.ok("view_food_cart")["items"]] == [first["item_id"]]
    r.err("remove_item_from_food_cart", "not_in_cart", item_id=second["item_id"])

    before = r.ok("check_menu_item_availability", item_id=first["item_id"])["remaining_portions"]
    fee = r.ok("estimate_delivery_fee", restaurant_id=restaurant_id, delivery_address=HOME)
    wallet = env.wallet_balance
    order = r.ok("place_food_order", delivery_address=HOME, payment_method="wallet")
    assert abs(order["total"] - (cart["subtotal"] + fee["delivery_fee"])) < 0.01
    assert abs(env.wallet_balance - (wallet - order["total"])) < 0.01
    assert r.ok("view_food_cart")["items"] == []
    assert r.ok("check_menu_item_availability", item_id=first["item_id"])["remaining_portions"] == before - 2

    oid = order["order_id"]
    r.err("rate_food_order", "not_delivered", order_id=oid, stars=5)
    tip = r.ok("calculate_food_tip", total=order["total"], tip_percent=15.0)
    assert abs(tip["tip_amount"] - order["total"] * 0.15) < 0.01
    receipt = r.ok("add_tip_to_food_order", order_id=oid, tip_amount=tip["tip_amount"])
    assert abs(receipt["total"] - (order["total"] + tip["tip_amount"])) < 0.01
    r.err("add_tip_to_food_order", "already_tipped", order_id=oid, tip_amount=1.0)

    stages = [r.ok("track_food_order", order_id=oid) for _ in range(4)]
    assert [s["status"] for s in stages] == ["preparing", "out_for_delivery", "delivered", "delivered"]
    assert stages[0]["courier_name"] == "" and stages[1]["courier_name"]
    assert stages[0]["minutes_remaining"] > stages[1]["minutes_remaining"] > stages[2]["minutes_remaining"] == 0
    r.err("cancel_food_order", "cannot_cancel", order_id=oid)

    reviews_before = r.ok("get_restaurant_reviews", restaurant_id=restaurant_id)["reviews"]
    rating = r.ok("rate_food_order", order_id=oid, stars=1, comment="Cold lasagna.")
    assert rating["restaurant_id"] == restaurant_id
    reviews = r.ok("get_restaurant_reviews", restaurant_id=restaurant_id)
    assert len(reviews["reviews"]) == len(reviews_before) + 1 and reviews["reviews"][0]["comment"] == "Cold lasagna."
    r.err("rate_food_order", "already_rated", order_id=oid, stars=4)
    r.err("rate_food_order", "unknown_order", order_id="FO-1", stars=4)

    # a second order, cancelled while the kitchen prepares it: paid by card, refunded in full
    r.ok("add_item_to_food_cart", item_id=second["item_id"])
    again = r.ok("place_food_order", delivery_address=HOME, payment_method="card")
    assert r.ok("cancel_food_order", order_id=again["order_id"])["refunded_amount"] == again["total"]
    r.assert_all_called()


def test_cancel_refunds_and_ordering_errors():
    env = FoodDeliveryEnv(seed=3)
    r = ToolRecorder(env)
    restaurant_id, dishes = _open_restaurant_with_dishes(r, "mexican")
    r.err("place_food_order", "empty_cart", delivery_address=HOME, payment_method="card")
    r.ok("add_item_to_food_cart", item_id=dishes[0]["item_id"])
    r.err("place_food_order", "address_not_served", delivery_address="1 Main Street, Atlantis", payment_method="card")
    wallet = env.wallet_balance
    order = r.ok("place_food_order", delivery_address=HOME, payment_method="wallet")
    assert r.ok("track_food_order", order_id=order["order_id"])["status"] == "preparing"
    cancelled = r.ok("cancel_food_order", order_id=order["order_id"])
    assert cancelled["refunded_amount"] == order["total"] and abs(env.wallet_balance - wallet) < 0.01
    assert r.ok("track_food_order", order_id=order["order_id"])["status"] == "cancelled"
    r.err("cancel_food_order", "cannot_cancel", order_id=order["order_id"])
    r.err("add_tip_to_food_order", "order_cancelled", order_id=order["order_id"], tip_amount=2.0)

    # a sold-out dish, a dish from another restaurant, too many portions
    sold_out = next(i for i in env.items.values() if i.remaining_portions == 0)
    r.err("add_item_to_food_cart", "item_unavailable", item_id=sold_out.item_id)
    assert not r.ok("check_menu_item_availability", item_id=sold_out.item_id)["available"]
    r.ok("add_item_to_food_cart", item_id=dishes[0]["item_id"])
    other = next(i for i in env.items.values() if i.restaurant_id != restaurant_id and i.remaining_portions)
    r.err("add_item_to_food_cart", "cart_conflict", item_id=other.item_id)
    r.err("add_item_to_food_cart", "item_unavailable", item_id=dishes[0]["item_id"], quantity=1000)
    r.err("add_item_to_food_cart", "invalid_quantity", item_id=dishes[0]["item_id"], quantity=0)

    # the wallet cannot pay for a large order; a card can
    r.ok("add_item_to_food_cart", item_id=dishes[1]["item_id"], quantity=min(dishes_left(env, dishes[1]), 3))
    env.wallet_balance = 5.0
    r.err("place_food_order", "insufficient_funds", delivery_address=HOME, payment_method="wallet")
    assert r.ok("place_food_order", delivery_address=HOME, payment_method="card")["status"] == "placed"

    closed = next(x for x in env.restaurants.values() if not x.is_open)
    r.ok("add_item_to_food_cart", item_id=next(i for i in closed.item_ids if env.items[i].remaining_portions))
    r.err("place_food_order", "restaurant_closed", delivery_address=HOME, payment_method="card")
    assert all(x["is_open"] for x in r.ok("search_restaurants", cuisine="thai", open_now=True)["restaurants"])
    assert {x["city"] for x in r.ok("search_restaurants", cuisine="thai", city="Oakland")["restaurants"]} <= {"Oakland"}
    r.err("get_restaurant_menu", "unknown_restaurant", restaurant_id="RS-1")
    r.err("check_menu_item_availability", "unknown_item", item_id="IT-1")
    r.err("track_food_order", "unknown_order", order_id="FO-1")
    r.err("calculate_food_tip", "invalid_amount", total=20.0, tip_percent=150.0)


def dishes_left(env, dish):
    return env.items[dish["item_id"]].remaining_portions


def test_out_of_range_delivery():
    env = FoodDeliveryEnv(seed=3)
    r = ToolRecorder(env)
    far = [
        (rid, address)
        for rid in env.restaurants
        for address in env.addresses
        if "error" in env.call("estimate_delivery_fee", {"restaurant_id": rid, "delivery_address": address})
    ]
    assert far
    r.err("estimate_delivery_fee", "out_of_range", restaurant_id=far[0][0], delivery_address=far[0][1])
