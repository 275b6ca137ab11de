from magnet_lib.pool.envs.shopping import ShoppingEnv
from tests.envs_support import ToolRecorder


def test_search_cart_coupon_checkout_track_cancel():
    r = ToolRecorder(ShoppingEnv(seed=3))
    env = r.env
    found = r.ok("search_products", query="electronics kitchen sports home office")["products"]
    assert len(found) == 14 and [p["rating"] for p in found] == sorted((p["rating"] for p in found), reverse=True)
    cheap = r.ok("search_products", query="electronics kitchen sports home office", max_price=40)["products"]
    assert cheap and all(p["price"] <= 40 for p in cheap)

    # stock check gates adding to the cart
    stock = {p["product_id"]: r.ok("check_product_stock", product_id=p["product_id"]) for p in found}
    sold_out = next(pid for pid, s in stock.items() if not s["in_stock"])
    r.err("add_product_to_cart", "out_of_stock", product_id=sold_out)
    pid, level = max(((pid, s) for pid, s in stock.items()), key=lambda kv: kv[1]["quantity_available"])
    details = r.ok("get_product_details", product_id=pid)
    assert details["product_id"] == pid and details["description"]
    r.err("add_product_to_cart", "insufficient_stock", product_id=pid, quantity=level["quantity_available"] + 1)
    r.err("add_product_to_cart", "invalid_quantity", product_id=pid, quantity=0)
    cart = r.ok("add_product_to_cart", product_id=pid, quantity=level["quantity_available"])
    assert cart["subtotal"] == round(details["price"] * level["quantity_available"], 2)
    assert r.ok("view_shopping_cart") == cart

    # coupons: the listed ones apply when the subtotal meets their minimum
    coupons = r.ok("list_shop_coupons")["coupons"]
    assert len(coupons) == 3 and not set(c["coupon_code"] for c in coupons) & env.expired_coupons
    r.err("apply_shop_coupon", "coupon_expired", coupon_code=next(iter(env.expired_coupons)))
    r.err("apply_shop_coupon", "unknown_coupon", coupon_code="FREESTUFF")
    usable = [c for c in coupons if c["min_subtotal"] <= cart["subtotal"]]
    too_big = [c for c in coupons if c["min_subtotal"] > cart["subtotal"]]
    if too_big:
        r.err("apply_shop_coupon", "minimum_not_met", coupon_code=too_big[0]["coupon_code"])
    if usable:
        best = max(usable, key=lambda c: c["percent_off"])
        applied = r.ok("apply_shop_coupon", coupon_code=best["coupon_code"].lower())
        assert applied["discount"] == round(cart["subtotal"] * best["percent_off"] / 100, 2)
        assert applied["total"] == round(applied["subtotal"] - applied["discount"], 2)
        cart = applied

    order = r.ok("checkout_shopping_cart", shipping_address="42 Elm Road, Portland, OR", payment_method="credit_card")
    assert order["status"] == "processing" and order["total"] == cart["total"]
    assert env.products[pid].stock == 0 and r.ok("view_shopping_cart")["items"] == []
    r.err("checkout_shopping_cart", "empty_cart", shipping_address="x", payment_method="credit_card")
    details = r.ok("get_shop_order_details", order_id=order["order_id"])
    assert details["shipping_address"] == "42 Elm Road, Portland, OR" and details["items"][0]["product_id"] == pid
    shipment = r.ok("track_shipment", tracking_number=details["tracking_number"])
    assert shipment["order_id"] == order["order_id"] and shipment["shipment_status"] == "label_created"

    cancelled = r.ok("cancel_shop_order", order_id=order["order_id"])
    assert cancelled["status"] == "cancelled" and cancelled["refund_amount"] == order["total"]
    assert r.ok("check_product_stock", product_id=pid)["quantity_available"] == level["quantity_available"]
    assert r.ok("track_shipment", tracking_number=details["tracking_number"])["shipment_status"] == "cancelled"
    r.err("cancel_shop_order", "cannot_cancel", order_id=order["order_id"])
    shipped = r.ok("list_shop_orders", status="shipped")["orders"][0]["order_id"]
    r.err("cancel_shop_order", "cannot_cancel", order_id=shipped)
    r.err("track_shipment", "unknown_tracking_number", tracking_number="1Z-0")
    r.err("get_product_details", "unknown_product", product_id="PR-0")
    r.err("get_shop_order_details", "unknown_order", order_id="OR-0")


def test_gift_card_and_returns():
    r = ToolRecorder(ShoppingEnv(seed=4))
    env = r.env
    # the gift card cannot pay for a cart above its balance
    pricey = max((p for p in env.products.values() if p.stock > 0), key=lambda p: p.price)
    r.err("apply_shop_coupon", "empty_cart", coupon_code=next(iter(set(env.coupons) - env.expired_coupons)))
    qty = min(pricey.stock, int(env.gift_card_balance // pricey.price) + 1)
    cart = r.ok("add_product_to_cart", product_id=pricey.product_id, quantity=qty)
    if cart["total"] > env.gift_card_balance:
        r.err("checkout_shopping_cart", "insufficient_funds", shipping_address=env.address, payment_method="gift_card")
    balance = env.gift_card_balance
    env.gift_card_balance = 10_000.0
    order = r.ok("checkout_shopping_cart", shipping_address=env.address, payment_method="gift_card")
    assert env.gift_card_balance == round(10_000.0 - order["total"], 2)
    r.ok("cancel_shop_order", order_id=order["order_id"])
    assert env.gift_card_balance == 10_000.0
    env.gift_card_balance = balance

    # returns: only delivered orders, only their products, once each
    orders = r.ok("list_shop_orders")["orders"]
    assert orders[0]["order_id"] == order["order_id"] and {o["status"] for o in orders} == {
        "cancelled",
        "shipped",
        "delivered",
        "processing",
    }
    delivered = r.ok("list_shop_orders", status="delivered")["orders"][0]["order_id"]
    line = r.ok("get_shop_order_details", order_id=delivered)["items"][0]
    ret = r.ok("request_product_return", order_id=delivered, product_id=line["product_id"], reason="damaged")
    assert ret["refund_amount"] == round(line["unit_price"] * line["quantity"], 2)
    status = r.ok("get_return_refund_status", return_id=ret["return_id"])
    assert status["return_status"] == "approved" and status["order_id"] == delivered
    r.err("request_product_return", "already_returned", order_id=delivered, product_id=line["product_id"], reason="damaged")
    r.err("request_product_return", "not_delivered", order_id=order["order_id"], product_id=pricey.product_id, reason="wrong_item")
    r.err("request_product_return", "product_not_in_order", order_id=delivered, product_id="PR-0", reason="wrong_item")
    r.err("get_return_refund_status", "unknown_return", return_id="RA-0")
    assert (
        r.ok("track_shipment", tracking_number=r.ok("get_shop_order_details", order_id=delivered)["tracking_number"])["shipment_status"]
        == "delivered"
    )


def test_every_tool_called():
    r = ToolRecorder(ShoppingEnv(seed=5))
    coupon = min(r.ok("list_shop_coupons")["coupons"], key=lambda c: c["min_subtotal"])
    # fill the cart with in-stock products until the coupon's minimum is met
    for found in r.ok("search_products", query="kitchen electronics sports home office")["products"]:
        r.ok("get_product_details", product_id=found["product_id"])
        stock = r.ok("check_product_stock", product_id=found["product_id"])
        if stock["in_stock"]:
            r.ok("add_product_to_cart", product_id=found["product_id"], quantity=stock["quantity_available"])
            if r.ok("view_shopping_cart")["subtotal"] >= coupon["min_subtotal"]:
                break
    r.ok("apply_shop_coupon", coupon_code=coupon["coupon_code"])
    order_id = r.ok("checkout_shopping_cart", shipping_address=r.env.address, payment_method="credit_card")["order_id"]
    tracking = r.ok("get_shop_order_details", order_id=order_id)["tracking_number"]
    r.ok("track_shipment", tracking_number=tracking)
    r.ok("cancel_shop_order", order_id=order_id)
    delivered = r.ok("list_shop_orders", status="delivered")["orders"][0]["order_id"]
    product = r.ok("get_shop_order_details", order_id=delivered)["items"][-1]["product_id"]
    ret = r.ok("request_product_return", order_id=delivered, product_id=product, reason="no_longer_needed")
    r.ok("get_return_refund_status", return_id=ret["return_id"])
    r.assert_all_called()
