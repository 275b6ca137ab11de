"""Each built-in world starts with a history a user acts on: an order still processing to
cancel, a limit order waiting, a trip booked, lunch delivered, appointments made. Without it a
walk that reaches cancel / change / rate / reschedule had nothing the world allows, and the
episode was rejected ('no value for required parameter'). Each test fails on the worlds that
started empty."""

import pytest

from magnet_lib.pool.envs.food_delivery import FoodDeliveryEnv
from magnet_lib.pool.envs.healthcare import HealthcareEnv
from magnet_lib.pool.envs.shopping import ShoppingEnv
from magnet_lib.pool.envs.stock_trading import StockTradingEnv
from magnet_lib.pool.envs.travel import TravelEnv
from tests.envs_support import ToolRecorder

SEEDS = range(6)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_processing_shop_order_can_be_cancelled(seed):
    r = ToolRecorder(ShoppingEnv(seed=seed))
    processing = [o for o in r.ok("list_shop_orders")["orders"] if o["status"] == "processing"]
    assert len(processing) == 1
    assert r.env.accepts("cancel_shop_order", "order_id", processing[0]["order_id"])
    assert r.ok("cancel_shop_order", order_id=processing[0]["order_id"])["status"] == "cancelled"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_waiting_limit_order_can_be_cancelled(seed):
    r = ToolRecorder(StockTradingEnv(seed=seed))
    waiting = r.ok("list_stock_orders", status="open")["orders"]
    assert len(waiting) == 1 and waiting[0]["order_type"] == "limit"
    balance = r.ok("get_trading_balance")
    assert 0 < balance["available_cash"] < balance["cash_balance"]  # the order reserves cash it can pay
    assert r.env.accepts("cancel_stock_order", "order_id", waiting[0]["order_id"])
    assert r.ok("cancel_stock_order", order_id=waiting[0]["order_id"])["status"] == "cancelled"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_booked_trip_can_be_changed_to_the_other_flight_of_its_route(seed):
    env = TravelEnv(seed=seed)
    r = ToolRecorder(env)
    (booking_id,) = env.bookings
    booking = r.ok("get_flight_booking", booking_id=booking_id)
    assert booking["status"] == "confirmed"
    old = env.flights[booking["flight_id"]]
    found = r.ok("search_flights", origin_city=old.origin_city, destination_city=old.destination_city)["flights"]
    others = [f["flight_id"] for f in found if f["flight_id"] != old.flight_id]
    assert others
    chosen = {"booking_id": booking_id}
    allowed = [f for f in others if env.accepts("change_flight_booking", "flight_id", f, chosen)]
    assert not env.accepts("change_flight_booking", "flight_id", old.flight_id, chosen)  # not onto the flight it is on
    elsewhere = next(f for f in env.flights.values() if (f.origin_city, f.destination_city) != (old.origin_city, old.destination_city))
    assert not env.accepts("change_flight_booking", "flight_id", elsewhere.flight_id, chosen)  # nor onto another route
    for flight_id in others:  # what accepts says is what the tool does
        out = TravelEnv(seed=seed).call("change_flight_booking", {"booking_id": booking_id, "flight_id": flight_id})
        assert ("error" not in out) == (flight_id in allowed), out
    r.ok("cancel_flight_booking", booking_id=booking_id)
    assert not env.accepts("change_flight_booking", "booking_id", booking_id)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_delivered_lunch_can_be_rated_and_tipped(seed):
    env = FoodDeliveryEnv(seed=seed)
    r = ToolRecorder(env)
    (order_id,) = env.orders
    assert env.accepts("rate_food_order", "order_id", order_id) and env.accepts("add_tip_to_food_order", "order_id", order_id)
    assert not env.accepts("cancel_food_order", "order_id", order_id)
    r.ok("rate_food_order", order_id=order_id, stars=4)
    r.ok("add_tip_to_food_order", order_id=order_id, tip_amount=3.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_appointments_and_a_reschedule_only_to_their_doctors(seed):
    env = HealthcareEnv(seed=seed)
    r = ToolRecorder(env)
    appointments = r.ok("list_my_appointments")["appointments"]
    assert len({a["doctor_id"] for a in appointments}) == 2
    theirs = {a["doctor_id"] for a in appointments}
    free = [(d, s) for d in env.doctors.values() for s in d.slots if s not in env.booked_slots]
    for doctor, slot in free:  # before an appointment is chosen: a slot of a doctor the patient sees
        assert env.accepts("reschedule_doctor_appointment", "slot_id", slot) == (doctor.profile.doctor_id in theirs)
    first = appointments[0]
    slot = next(s for d, s in free if d.profile.doctor_id == first["doctor_id"])
    assert env.accepts("reschedule_doctor_appointment", "slot_id", slot, {"appointment_id": first["appointment_id"]})
    moved = r.ok("reschedule_doctor_appointment", appointment_id=first["appointment_id"], slot_id=slot)
    assert moved["status"] == "scheduled"
    r.ok("cancel_doctor_appointment", appointment_id=first["appointment_id"])
    assert not env.accepts("reschedule_doctor_appointment", "appointment_id", first["appointment_id"])
