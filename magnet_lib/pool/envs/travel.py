"""Travel: flights, hotels and the traveller's loyalty account.

Flows: search_flights -> flight_id -> get_flight_details / check_flight_seat_availability (gate)
-> book_flight -> booking_id -> get_flight_booking / change_flight_booking (flight_id from a
second search) / cancel_flight_booking; get_loyalty_account -> points -> redeem_loyalty_points
on a booking_id (nested: the user says "use my points", not "read my balance");
search_hotels -> hotel_id -> check_hotel_room_availability (gate) -> room_type ->
book_hotel_room -> reservation_id -> get_hotel_reservation / cancel_hotel_reservation.
Flight prices are in USD, hotel rates in the city's local currency.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

# city, local currency
_CITIES = [
    ("New York", "USD"),
    ("San Francisco", "USD"),
    ("London", "GBP"),
    ("Paris", "EUR"),
    ("Rome", "EUR"),
    ("Tokyo", "JPY"),
]
_AIRLINES = [("Skyline Air", "SK"), ("Bluejet", "BJ"), ("Northstar", "NS"), ("Pacific Wings", "PW")]
_HOTEL_WORDS = ["Grand", "Harbor", "Garden", "Central", "Royal", "Riverside"]
_ROOM_TYPES = ("standard", "deluxe", "suite")
_ROOM_FACTOR = {"standard": 1.0, "deluxe": 1.5, "suite": 2.6}
_RATE_SCALE = {"USD": 1.0, "GBP": 0.8, "EUR": 0.92, "JPY": 150.0}
_FIRST_DAY = date(2025, 7, 1)
_DAYS = 10
_POINTS_PER_USD = 100  # redemption value: 100 points = 1 USD off a flight booking
_CHANGE_FEE_USD = 75.0
_NAMES = ["Alex Morgan", "Priya Shah", "Kenji Watanabe", "Maria Rossi", "Sam Carter"]

RoomType = Literal["standard", "deluxe", "suite"]


class FlightSummary(BaseModel):
    flight_id: str = Field(description="Identifier of the flight.")
    airline: str = Field(description="Operating airline.")
    origin_city: str = Field(description="City the flight departs from.")
    destination_city: str = Field(description="City the flight arrives in.")
    departure_date: str = Field(description="Departure date, YYYY-MM-DD.")
    departure_time: str = Field(description="Local departure time, HH:MM.")
    price: float = Field(description="Fare per seat.")
    currency: str = Field(description="Currency of the fare (ISO code).")
    seats_available: int = Field(description="Seats still for sale.")


class FlightList(BaseModel):
    """Flights matching the search, cheapest first."""

    flights: list[FlightSummary] = Field(description="Matching flights.")


class FlightDetails(FlightSummary):
    """Full details of one flight."""

    flight_number: str = Field(description="Airline flight number, e.g. 'SK 214'.")
    arrival_time: str = Field(description="Local arrival time, HH:MM (may be the next day).")
    duration_minutes: int = Field(description="Scheduled flight time in minutes.")
    baggage_allowance_kg: int = Field(description="Checked baggage included per passenger, in kg.")


class SeatAvailability(BaseModel):
    """Whether a flight still has the requested number of seats."""

    flight_id: str = Field(description="Identifier of the flight.")
    seats: int = Field(description="Number of seats asked for.")
    seats_available: int = Field(description="Seats still for sale.")
    available: bool = Field(description="True when the requested seats can be booked.")


class FlightBooking(BaseModel):
    """A flight booking."""

    booking_id: str = Field(description="Identifier of the booking.")
    flight_id: str = Field(description="Flight the booking is on.")
    passenger_name: str = Field(description="Name of the lead passenger.")
    seats: int = Field(description="Number of seats booked.")
    departure_date: str = Field(description="Departure date, YYYY-MM-DD.")
    total_price: float = Field(description="Amount charged after any loyalty discount.")
    currency: str = Field(description="Currency of the amount (ISO code).")
    points_redeemed: int = Field(description="Loyalty points applied to this booking.")
    status: Literal["confirmed", "cancelled"] = Field(description="Booking status.")


class FlightChange(BaseModel):
    """The outcome of moving a booking to another flight."""

    booking_id: str = Field(description="Identifier of the booking.")
    flight_id: str = Field(description="The flight the booking is now on.")
    change_fee: float = Field(description="Fee charged for the change.")
    fare_difference: float = Field(description="New fare minus old fare for all seats (negative = cheaper).")
    total_price: float = Field(description="New amount charged for the booking.")
    currency: str = Field(description="Currency of the amounts (ISO code).")


class FlightCancellation(BaseModel):
    """The outcome of cancelling a flight booking."""

    booking_id: str = Field(description="Identifier of the cancelled booking.")
    status: Literal["cancelled"] = Field(description="New booking status.")
    refund_amount: float = Field(description="Money refunded to the card.")
    currency: str = Field(description="Currency of the refund (ISO code).")
    points_refunded: int = Field(description="Loyalty points returned to the account.")


class HotelSummary(BaseModel):
    hotel_id: str = Field(description="Identifier of the hotel.")
    name: str = Field(description="Hotel name.")
    city: str = Field(description="City the hotel is in.")
    stars: int = Field(description="Star rating, 1 to 5.")
    nightly_rate: float = Field(description="Cheapest nightly rate (standard room).")
    currency: str = Field(description="Currency of the rate (ISO code).")


class HotelList(BaseModel):
    """Hotels matching the search."""

    hotels: list[HotelSummary] = Field(description="Matching hotels, best rated first.")


class RoomOffer(BaseModel):
    room_type: RoomType = Field(description="Kind of room.")
    nightly_rate: float = Field(description="Price per night.")
    total_price: float = Field(description="Price for the whole stay.")
    currency: str = Field(description="Currency of the prices (ISO code).")
    rooms_left: int = Field(description="Rooms of this type free for every night of the stay.")


class HotelAvailability(BaseModel):
    """Rooms free at a hotel for a stay."""

    hotel_id: str = Field(description="Identifier of the hotel.")
    check_in_date: str = Field(description="First night, YYYY-MM-DD.")
    nights: int = Field(description="Length of the stay in nights.")
    rooms: list[RoomOffer] = Field(description="Room types with at least one free room.")


class HotelReservation(BaseModel):
    """A hotel reservation."""

    reservation_id: str = Field(description="Identifier of the reservation.")
    hotel_id: str = Field(description="Hotel of the reservation.")
    room_type: RoomType = Field(description="Kind of room reserved.")
    guest_name: str = Field(description="Name of the guest.")
    check_in_date: str = Field(description="First night, YYYY-MM-DD.")
    check_out_date: str = Field(description="Departure day, YYYY-MM-DD.")
    nights: int = Field(description="Length of the stay in nights.")
    total_price: float = Field(description="Price of the stay.")
    currency: str = Field(description="Currency of the price (ISO code).")
    status: Literal["confirmed", "cancelled"] = Field(description="Reservation status.")


class HotelCancellation(BaseModel):
    """The outcome of cancelling a hotel reservation."""

    reservation_id: str = Field(description="Identifier of the cancelled reservation.")
    status: Literal["cancelled"] = Field(description="New reservation status.")
    refund_amount: float = Field(description="Money refunded.")
    currency: str = Field(description="Currency of the refund (ISO code).")


class LoyaltyAccount(BaseModel):
    """The traveller's frequent-flyer account."""

    member_id: str = Field(description="Loyalty membership number.")
    points: int = Field(description="Points available to redeem.")
    tier: Literal["blue", "silver", "gold"] = Field(description="Membership tier.")
    points_value_usd: float = Field(description="What the available points are worth off a flight, in USD.")


class PointsRedemption(BaseModel):
    """Points applied to a flight booking."""

    booking_id: str = Field(description="Booking the points were applied to.")
    points_redeemed: int = Field(description="Points spent now.")
    discount: float = Field(description="Amount taken off the booking.")
    total_price: float = Field(description="Amount charged for the booking after the discount.")
    currency: str = Field(description="Currency of the amounts (ISO code).")
    points_remaining: int = Field(description="Points left in the account.")


class _Flight(BaseModel):
    flight_id: str
    airline: str
    flight_number: str
    origin_city: str
    destination_city: str
    departure: str  # YYYY-MM-DD HH:MM
    duration_minutes: int
    price: float
    seats_available: int
    baggage_allowance_kg: int


class _Hotel(BaseModel):
    hotel_id: str
    name: str
    city: str
    stars: int
    currency: str
    rates: dict[str, float]  # room type -> nightly rate
    rooms: dict[str, int]  # room type -> rooms in the hotel


def _parse_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolError("invalid_date", f"{what} '{value}' is not a date in YYYY-MM-DD form") from None


class TravelEnv(ToolEnvironment):
    category = "travel"
    description = "Searching, booking, changing and cancelling flights and hotels; loyalty points."

    def setup(self) -> None:
        rng = self.rng
        self.flights: dict[str, _Flight] = {}
        names = [c for c, _ in _CITIES]
        routes = [(a, b) for a in names for b in names if a != b]
        for origin, destination in rng.sample(routes, 12):
            for _ in range(2):
                airline, code = rng.choice(_AIRLINES)
                day = _FIRST_DAY + timedelta(days=rng.randrange(_DAYS))
                fid = self.new_id("FL")
                self.flights[fid] = _Flight(
                    flight_id=fid,
                    airline=airline,
                    flight_number=f"{code} {rng.randrange(100, 999)}",
                    origin_city=origin,
                    destination_city=destination,
                    departure=f"{day.isoformat()} {rng.randrange(6, 22):02d}:{rng.choice((0, 15, 30, 45)):02d}",
                    duration_minutes=rng.randrange(70, 720, 5),
                    price=float(rng.randrange(120, 1400)),
                    seats_available=rng.randrange(0, 9),
                    baggage_allowance_kg=rng.choice((0, 20, 23, 32)),
                )
        self.hotels: dict[str, _Hotel] = {}
        for city, currency in _CITIES:
            for word in rng.sample(_HOTEL_WORDS, 2):
                hid = self.new_id("HT")
                base = rng.randrange(90, 320) * _RATE_SCALE[currency]
                self.hotels[hid] = _Hotel(
                    hotel_id=hid,
                    name=f"{word} Hotel {city}",
                    city=city,
                    stars=rng.randrange(2, 6),
                    currency=currency,
                    rates={rt: round(base * _ROOM_FACTOR[rt], 2) for rt in _ROOM_TYPES},
                    rooms={rt: rng.randrange(0, 4) for rt in _ROOM_TYPES},
                )
        points = rng.randrange(2_000, 40_000, 50)
        self.loyalty = LoyaltyAccount(
            member_id=self.new_id("MB", 8),
            points=points,
            tier="gold" if points > 25_000 else "silver" if points > 10_000 else "blue",
            points_value_usd=points / _POINTS_PER_USD,
        )
        self.bookings: dict[str, FlightBooking] = {}
        # a trip the user booked before: a booking to look up, change (its route has another flight) or cancel
        booked = rng.choice(sorted((f for f in self.flights.values() if f.seats_available > 0), key=lambda f: f.flight_id))
        booked.seats_available -= 1
        booking_id = self.new_id("BK")
        self.bookings[booking_id] = FlightBooking(
            booking_id=booking_id,
            flight_id=booked.flight_id,
            passenger_name=rng.choice(_NAMES),
            seats=1,
            departure_date=booked.departure[:10],
            total_price=booked.price,
            currency="USD",
            points_redeemed=0,
            status="confirmed",
        )
        self.reservations: dict[str, HotelReservation] = {}

    def user_values(self) -> dict[str, list]:
        cities = [c for c, _ in _CITIES]
        dates = sorted({f.departure[:10] for f in self.flights.values()})
        return {
            "origin_city": cities,
            "destination_city": cities,
            "city": cities,
            "departure_date": dates,
            "check_in_date": [(_FIRST_DAY + timedelta(days=d)).isoformat() for d in range(_DAYS)],
            "passenger_name": _NAMES,
            "guest_name": _NAMES,
        }

    # ------------------------------------------------------------------ lookups
    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """An active booking to change, cancel or discount; to change it, another flight of its
        route with a seat for each of its passengers."""
        if param == "booking_id" and tool in ("change_flight_booking", "cancel_flight_booking", "redeem_loyalty_points"):
            booking = self.bookings.get(value)
            return booking is not None and booking.status != "cancelled"
        if tool == "change_flight_booking" and param == "flight_id" and chosen and chosen.get("booking_id") in self.bookings:
            booking, new = self.bookings[chosen["booking_id"]], self.flights.get(value)
            old = self.flights[booking.flight_id]
            return (
                new is not None
                and new.flight_id != old.flight_id
                and (new.origin_city, new.destination_city) == (old.origin_city, old.destination_city)
                and new.seats_available >= booking.seats
            )
        return True

    def _flight(self, flight_id: str) -> _Flight:
        return self.lookup(self.flights, flight_id, "unknown_flight", f"no flight with id '{flight_id}'")

    def _booking(self, booking_id: str, *, active: bool = True) -> FlightBooking:
        booking = self.bookings.get(booking_id)
        if booking is None:
            raise ToolError("unknown_booking", f"no flight booking with id '{booking_id}'")
        if active and booking.status == "cancelled":
            raise ToolError("booking_cancelled", f"booking '{booking_id}' is cancelled")
        return booking

    def _hotel(self, hotel_id: str) -> _Hotel:
        return self.lookup(self.hotels, hotel_id, "unknown_hotel", f"no hotel with id '{hotel_id}'")

    def _city(self, city: str) -> str:
        for name, _ in _CITIES:
            if name.lower() == city.strip().lower():
                return name
        raise ToolError("unknown_city", f"no airport or hotels in '{city}'; known cities: {', '.join(c for c, _ in _CITIES)}")

    def _summary(self, f: _Flight) -> dict:
        return dict(
            flight_id=f.flight_id,
            airline=f.airline,
            origin_city=f.origin_city,
            destination_city=f.destination_city,
            departure_date=f.departure[:10],
            departure_time=f.departure[11:],
            price=f.price,
            currency="USD",
            seats_available=f.seats_available,
        )

    def _rooms_left(self, hotel: _Hotel, room_type: str, check_in: date, nights: int) -> int:
        worst = 0
        for offset in range(nights):
            night = check_in + timedelta(days=offset)
            taken = sum(
                1
                for r in self.reservations.values()
                if r.status == "confirmed"
                and r.hotel_id == hotel.hotel_id
                and r.room_type == room_type
                and date.fromisoformat(r.check_in_date) <= night < date.fromisoformat(r.check_out_date)
            )
            worst = max(worst, taken)
        return hotel.rooms[room_type] - worst

    def _stay(self, check_in_date: str, nights: int) -> date:
        if nights < 1:
            raise ToolError("invalid_nights", "a stay lasts at least one night")
        return _parse_date(check_in_date, "check-in date")

    # ------------------------------------------------------------------ flights
    @tool("Flight booking")
    def search_flights(self, origin_city: str, destination_city: str, departure_date: str | None = None) -> FlightList:
        """Search flights between two cities, optionally on one date.

        Args:
            origin_city: City to fly from, e.g. 'London'.
            destination_city: City to fly to, e.g. 'Tokyo'.
            departure_date: Only flights leaving on this date (YYYY-MM-DD).
        """
        origin, destination = self._city(origin_city), self._city(destination_city)
        if departure_date is not None:
            _parse_date(departure_date, "departure date")
        hits = [
            f
            for f in self.flights.values()
            if f.origin_city == origin
            and f.destination_city == destination
            and (departure_date is None or f.departure.startswith(departure_date))
        ]
        hits.sort(key=lambda f: (f.price, f.departure))
        return FlightList(flights=[FlightSummary(**self._summary(f)) for f in hits])

    @tool("Flight booking")
    def get_flight_details(self, flight_id: str) -> FlightDetails:
        """Full details of a flight: times, duration, fare, seats left and baggage allowance.

        Args:
            flight_id: Identifier of a flight returned by search_flights.
        """
        f = self._flight(flight_id)
        hours, minutes = map(int, f.departure[11:].split(":"))
        end = hours * 60 + minutes + f.duration_minutes
        return FlightDetails(
            **self._summary(f),
            flight_number=f.flight_number,
            arrival_time=f"{(end // 60) % 24:02d}:{end % 60:02d}" + (" (+1)" if end >= 24 * 60 else ""),
            duration_minutes=f.duration_minutes,
            baggage_allowance_kg=f.baggage_allowance_kg,
        )

    @tool("Flight booking")
    def check_flight_seat_availability(self, flight_id: str, seats: int = 1) -> SeatAvailability:
        """Check whether a flight still has enough seats before booking it.

        Args:
            flight_id: Identifier of the flight.
            seats: Number of seats wanted.
        """
        f = self._flight(flight_id)
        return SeatAvailability(
            flight_id=flight_id, seats=seats, seats_available=f.seats_available, available=0 < seats <= f.seats_available
        )

    @tool("Flight booking")
    def book_flight(self, flight_id: str, passenger_name: str, seats: int = 1) -> FlightBooking:
        """Book seats on a flight and earn loyalty points (one point per USD paid).

        Args:
            flight_id: Identifier of the flight to book.
            passenger_name: Full name of the lead passenger.
            seats: Number of seats to book.
        """
        f = self._flight(flight_id)
        if seats < 1:
            raise ToolError("invalid_seats", "book at least one seat")
        if seats > f.seats_available:
            raise ToolError("insufficient_seats", f"flight '{flight_id}' has only {f.seats_available} seats left, asked for {seats}")
        f.seats_available -= seats
        booking_id = self.new_id("BK")
        total = round(f.price * seats, 2)
        self.bookings[booking_id] = FlightBooking(
            booking_id=booking_id,
            flight_id=flight_id,
            passenger_name=passenger_name,
            seats=seats,
            departure_date=f.departure[:10],
            total_price=total,
            currency="USD",
            points_redeemed=0,
            status="confirmed",
        )
        self._set_points(self.loyalty.points + int(total))
        return self.bookings[booking_id]

    @tool("Flight booking")
    def get_flight_booking(self, booking_id: str) -> FlightBooking:
        """Look up a flight booking: its flight, passenger, price and status.

        Args:
            booking_id: Identifier of a booking returned by book_flight.
        """
        return self._booking(booking_id, active=False)

    @tool("Flight booking")
    def change_flight_booking(self, booking_id: str, flight_id: str) -> FlightChange:
        """Move a booking to another flight on the same route; a change fee and any fare difference apply.

        Args:
            booking_id: Identifier of the booking to change.
            flight_id: Identifier of the flight to move the booking to, from search_flights.
        """
        booking = self._booking(booking_id)
        old, new = self._flight(booking.flight_id), self._flight(flight_id)
        if new.flight_id == old.flight_id:
            raise ToolError("same_flight", f"booking '{booking_id}' is already on flight '{flight_id}'")
        if (new.origin_city, new.destination_city) != (old.origin_city, old.destination_city):
            raise ToolError(
                "route_mismatch",
                f"flight '{flight_id}' flies {new.origin_city}-{new.destination_city}, the booking is for "
                f"{old.origin_city}-{old.destination_city}; cancel and book instead",
            )
        if booking.seats > new.seats_available:
            raise ToolError("insufficient_seats", f"flight '{flight_id}' has only {new.seats_available} seats left")
        difference = round((new.price - old.price) * booking.seats, 2)
        old.seats_available += booking.seats
        new.seats_available -= booking.seats
        booking.flight_id = flight_id
        booking.departure_date = new.departure[:10]
        booking.total_price = round(max(0.0, booking.total_price + difference) + _CHANGE_FEE_USD, 2)
        return FlightChange(
            booking_id=booking_id,
            flight_id=flight_id,
            change_fee=_CHANGE_FEE_USD,
            fare_difference=difference,
            total_price=booking.total_price,
            currency="USD",
        )

    @tool("Flight booking")
    def cancel_flight_booking(self, booking_id: str) -> FlightCancellation:
        """Cancel a flight booking; the money paid is refunded and redeemed points are returned.

        Args:
            booking_id: Identifier of the booking to cancel.
        """
        booking = self._booking(booking_id)
        booking.status = "cancelled"
        self._flight(booking.flight_id).seats_available += booking.seats
        self._set_points(self.loyalty.points + booking.points_redeemed)
        return FlightCancellation(
            booking_id=booking_id,
            status="cancelled",
            refund_amount=booking.total_price,
            currency=booking.currency,
            points_refunded=booking.points_redeemed,
        )

    # ------------------------------------------------------------------ hotels
    @tool("Hotel booking")
    def search_hotels(self, city: str, min_stars: int = 1) -> HotelList:
        """Search hotels in a city, optionally with a minimum star rating.

        Args:
            city: City to stay in, e.g. 'Paris'.
            min_stars: Only hotels with at least this many stars.
        """
        name = self._city(city)
        hits = [h for h in self.hotels.values() if h.city == name and h.stars >= min_stars]
        hits.sort(key=lambda h: (-h.stars, h.rates["standard"]))
        return HotelList(
            hotels=[
                HotelSummary(
                    hotel_id=h.hotel_id, name=h.name, city=h.city, stars=h.stars, nightly_rate=h.rates["standard"], currency=h.currency
                )
                for h in hits
            ]
        )

    @tool("Hotel booking")
    def check_hotel_room_availability(self, hotel_id: str, check_in_date: str, nights: int = 1) -> HotelAvailability:
        """Which room types of a hotel are free for a stay, with their prices.

        Args:
            hotel_id: Identifier of a hotel returned by search_hotels.
            check_in_date: First night of the stay (YYYY-MM-DD).
            nights: Number of nights.
        """
        hotel = self._hotel(hotel_id)
        check_in = self._stay(check_in_date, nights)
        offers = []
        for room_type in _ROOM_TYPES:
            left = self._rooms_left(hotel, room_type, check_in, nights)
            if left > 0:
                rate = hotel.rates[room_type]
                offers.append(
                    RoomOffer(
                        room_type=room_type,
                        nightly_rate=rate,
                        total_price=round(rate * nights, 2),
                        currency=hotel.currency,
                        rooms_left=left,
                    )
                )
        return HotelAvailability(hotel_id=hotel_id, check_in_date=check_in.isoformat(), nights=nights, rooms=offers)

    @tool("Hotel booking")
    def book_hotel_room(self, hotel_id: str, room_type: RoomType, check_in_date: str, guest_name: str, nights: int = 1) -> HotelReservation:
        """Reserve a room at a hotel for a stay.

        Args:
            hotel_id: Identifier of the hotel.
            room_type: Kind of room to reserve.
            check_in_date: First night of the stay (YYYY-MM-DD).
            guest_name: Full name of the guest.
            nights: Number of nights.
        """
        hotel = self._hotel(hotel_id)
        check_in = self._stay(check_in_date, nights)
        if self._rooms_left(hotel, room_type, check_in, nights) < 1:
            raise ToolError("no_rooms_available", f"no {room_type} room free at '{hotel_id}' for {nights} night(s) from {check_in}")
        reservation_id = self.new_id("HR")
        self.reservations[reservation_id] = HotelReservation(
            reservation_id=reservation_id,
            hotel_id=hotel_id,
            room_type=room_type,
            guest_name=guest_name,
            check_in_date=check_in.isoformat(),
            check_out_date=(check_in + timedelta(days=nights)).isoformat(),
            nights=nights,
            total_price=round(hotel.rates[room_type] * nights, 2),
            currency=hotel.currency,
            status="confirmed",
        )
        return self.reservations[reservation_id]

    @tool("Hotel booking")
    def get_hotel_reservation(self, reservation_id: str) -> HotelReservation:
        """Look up a hotel reservation: hotel, room, dates, price and status.

        Args:
            reservation_id: Identifier of a reservation returned by book_hotel_room.
        """
        return self.lookup(self.reservations, reservation_id, "unknown_reservation", f"no hotel reservation with id '{reservation_id}'")

    @tool("Hotel booking")
    def cancel_hotel_reservation(self, reservation_id: str) -> HotelCancellation:
        """Cancel a hotel reservation and free its room; the full price is refunded.

        Args:
            reservation_id: Identifier of the reservation to cancel.
        """
        reservation = self.get_hotel_reservation(reservation_id)
        if reservation.status == "cancelled":
            raise ToolError("reservation_cancelled", f"reservation '{reservation_id}' is already cancelled")
        reservation.status = "cancelled"
        return HotelCancellation(
            reservation_id=reservation_id, status="cancelled", refund_amount=reservation.total_price, currency=reservation.currency
        )

    # ------------------------------------------------------------------ loyalty
    def _set_points(self, points: int) -> None:
        self.loyalty.points = points
        self.loyalty.points_value_usd = points / _POINTS_PER_USD

    @tool("Loyalty program")
    def get_loyalty_account(self) -> LoyaltyAccount:
        """The traveller's frequent-flyer account: membership number, points balance and tier."""
        return self.loyalty

    @tool("Loyalty program")
    def redeem_loyalty_points(self, booking_id: str, points: int) -> PointsRedemption:
        """Spend loyalty points to lower the price of a flight booking (100 points = 1 USD).

        Args:
            booking_id: Identifier of the flight booking to discount.
            points: Number of points to spend.
        """
        booking = self._booking(booking_id)
        if points < 1:
            raise ToolError("invalid_points", "redeem at least one point")
        if points > self.loyalty.points:
            raise ToolError("insufficient_points", f"only {self.loyalty.points} points available, asked to redeem {points}")
        discount = round(points / _POINTS_PER_USD, 2)
        if discount > booking.total_price:
            raise ToolError(
                "discount_exceeds_price",
                f"{points} points are worth {discount} USD, more than the {booking.total_price} USD left to pay",
            )
        booking.total_price = round(booking.total_price - discount, 2)
        booking.points_redeemed += points
        self._set_points(self.loyalty.points - points)
        return PointsRedemption(
            booking_id=booking_id,
            points_redeemed=points,
            discount=discount,
            total_price=booking.total_price,
            currency=booking.currency,
            points_remaining=self.loyalty.points,
        )
