from magnet_lib.pool.envs.travel import TravelEnv
from tests.envs_support import ToolRecorder


def _route_with_two_open_flights(r: ToolRecorder):
    cities = r.env.user_values()["city"]
    for origin in cities:
        for destination in cities:
            if origin == destination:
                continue
            flights = r.ok("search_flights", origin_city=origin, destination_city=destination)["flights"]
            open_ = [f for f in flights if f["seats_available"] >= 2]
            if len(open_) >= 2:
                return open_
    raise AssertionError("world has no route with two open flights")


def flight_booking_flow(r: ToolRecorder) -> None:
    first, second = _route_with_two_open_flights(r)[:2]
    same_day = r.ok(
        "search_flights",
        origin_city=first["origin_city"],
        destination_city=first["destination_city"],
        departure_date=first["departure_date"],
    )["flights"]
    assert first["flight_id"] in [f["flight_id"] for f in same_day]
    assert all(f["departure_date"] == first["departure_date"] for f in same_day)

    details = r.ok("get_flight_details", flight_id=first["flight_id"])
    assert details["price"] == first["price"] and details["duration_minutes"] > 0
    assert r.ok("check_flight_seat_availability", flight_id=first["flight_id"], seats=2)["available"]
    too_many = first["seats_available"] + 1
    assert not r.ok("check_flight_seat_availability", flight_id=first["flight_id"], seats=too_many)["available"]
    r.err("book_flight", "insufficient_seats", flight_id=first["flight_id"], passenger_name="Priya Shah", seats=too_many)

    points_before = r.ok("get_loyalty_account")["points"]
    booking = r.ok("book_flight", flight_id=first["flight_id"], passenger_name="Priya Shah", seats=2)
    assert booking["total_price"] == round(first["price"] * 2, 2)
    assert r.ok("get_flight_details", flight_id=first["flight_id"])["seats_available"] == first["seats_available"] - 2
    account = r.ok("get_loyalty_account")
    assert account["points"] == points_before + int(booking["total_price"])

    # nested: "use 1,000 of my points" -> read the balance first, then redeem on the booking
    redeemed = r.ok("redeem_loyalty_points", booking_id=booking["booking_id"], points=1000)
    assert redeemed["discount"] == 10.0 and redeemed["total_price"] == round(booking["total_price"] - 10, 2)
    assert redeemed["points_remaining"] == account["points"] - 1000
    r.err("redeem_loyalty_points", "insufficient_points", booking_id=booking["booking_id"], points=account["points"] * 10)

    change = r.ok("change_flight_booking", booking_id=booking["booking_id"], flight_id=second["flight_id"])
    assert change["total_price"] == round(redeemed["total_price"] + change["fare_difference"] + change["change_fee"], 2)
    stored = r.ok("get_flight_booking", booking_id=booking["booking_id"])
    assert stored["flight_id"] == second["flight_id"] and stored["departure_date"] == second["departure_date"]
    r.err("change_flight_booking", "same_flight", booking_id=booking["booking_id"], flight_id=second["flight_id"])
    elsewhere = next(f for f in r.env.flights.values() if f.origin_city != first["origin_city"])
    r.err("change_flight_booking", "route_mismatch", booking_id=booking["booking_id"], flight_id=elsewhere.flight_id)

    cancelled = r.ok("cancel_flight_booking", booking_id=booking["booking_id"])
    assert cancelled["refund_amount"] == stored["total_price"] and cancelled["points_refunded"] == 1000
    assert r.ok("get_flight_booking", booking_id=booking["booking_id"])["status"] == "cancelled"
    assert r.ok("get_loyalty_account")["points"] == account["points"]
    assert r.ok("get_flight_details", flight_id=second["flight_id"])["seats_available"] == second["seats_available"]
    r.err("cancel_flight_booking", "booking_cancelled", booking_id=booking["booking_id"])
    r.err("redeem_loyalty_points", "booking_cancelled", booking_id=booking["booking_id"], points=10)

    r.err("get_flight_booking", "unknown_booking", booking_id="BK-1")
    r.err("get_flight_details", "unknown_flight", flight_id="FL-1")
    r.err("search_flights", "unknown_city", origin_city="Atlantis", destination_city="Paris")
    r.err("search_flights", "invalid_date", origin_city="Paris", destination_city="Rome", departure_date="next friday")


def hotel_booking_flow(r: ToolRecorder) -> None:
    hotels = [h for city in r.env.user_values()["city"] for h in r.ok("search_hotels", city=city)["hotels"]]
    assert hotels and all(hotels)
    good = r.ok("search_hotels", city="paris", min_stars=4)["hotels"]
    assert all(h["stars"] >= 4 and h["city"] == "Paris" for h in good)

    for hotel in hotels:
        offers = r.ok("check_hotel_room_availability", hotel_id=hotel["hotel_id"], check_in_date="2025-07-03", nights=2)["rooms"]
        if offers:
            break
    offer = offers[0]
    assert offer["total_price"] == round(offer["nightly_rate"] * 2, 2) and offer["currency"] == hotel["currency"]
    reservations = []
    for _ in range(offer["rooms_left"]):
        reservations.append(
            r.ok(
                "book_hotel_room",
                hotel_id=hotel["hotel_id"],
                room_type=offer["room_type"],
                check_in_date="2025-07-03",
                guest_name="Maria Rossi",
                nights=2,
            )
        )
    assert reservations[0]["check_out_date"] == "2025-07-05"
    # the room type is now full for an overlapping night, but free once the stay is over
    r.err(
        "book_hotel_room",
        "no_rooms_available",
        hotel_id=hotel["hotel_id"],
        room_type=offer["room_type"],
        check_in_date="2025-07-04",
        guest_name="Sam Carter",
    )
    after = r.ok("check_hotel_room_availability", hotel_id=hotel["hotel_id"], check_in_date="2025-07-05")["rooms"]
    assert offer["room_type"] in [o["room_type"] for o in after]

    rid = reservations[0]["reservation_id"]
    assert r.ok("get_hotel_reservation", reservation_id=rid)["status"] == "confirmed"
    refund = r.ok("cancel_hotel_reservation", reservation_id=rid)
    assert refund["refund_amount"] == reservations[0]["total_price"]
    assert r.ok("get_hotel_reservation", reservation_id=rid)["status"] == "cancelled"
    again = r.ok("check_hotel_room_availability", hotel_id=hotel["hotel_id"], check_in_date="2025-07-04")["rooms"]
    assert offer["room_type"] in [o["room_type"] for o in again]
    r.err("cancel_hotel_reservation", "reservation_cancelled", reservation_id=rid)
    r.err("get_hotel_reservation", "unknown_reservation", reservation_id="HR-1")
    r.err("check_hotel_room_availability", "unknown_hotel", hotel_id="HT-1", check_in_date="2025-07-03")
    r.err("check_hotel_room_availability", "invalid_nights", hotel_id=hotel["hotel_id"], check_in_date="2025-07-03", nights=0)
    r.err("book_hotel_room", "invalid_date", hotel_id=hotel["hotel_id"], room_type="suite", check_in_date="soon", guest_name="A")


def test_travel_flows():
    for seed in (3, 5, 8):
        r = ToolRecorder(TravelEnv(seed=seed))
        flight_booking_flow(r)
        hotel_booking_flow(r)
        r.assert_all_called()
