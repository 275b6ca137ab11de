"""Navigation: places, distances, routes and unit conversion.

Flows: search_places / geocode_address -> place_id -> get_distance (miles) -> convert_distance;
plan_route -> route_id -> get_route_details / start_navigation -> trip_id -> get_eta / stop_navigation;
save_place -> list_saved_places -> remove_saved_place.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

_CITIES = [
    ("San Francisco", 37.7749, -122.4194),
    ("San Mateo", 37.5630, -122.3255),
    ("Oakland", 37.8044, -122.2712),
    ("San Jose", 37.3382, -121.8863),
    ("Palo Alto", 37.4419, -122.1430),
    ("Berkeley", 37.8715, -122.2730),
    ("Sacramento", 38.5816, -121.4944),
    ("Santa Cruz", 36.9741, -122.0308),
]
_KINDS = ["cafe", "museum", "park", "restaurant", "gas_station", "hospital", "library"]
_SPEED_MPH = {"driving": 45.0, "cycling": 11.0, "walking": 3.0}


class Place(BaseModel):
    place_id: str = Field(description="Identifier of the place.")
    name: str = Field(description="Name of the place.")
    kind: str = Field(description="Kind of place, e.g. cafe or museum.")
    city: str = Field(description="City the place is in.")
    latitude: float = Field(description="Latitude in degrees.")
    longitude: float = Field(description="Longitude in degrees.")


class PlaceList(BaseModel):
    """Places matching the search."""

    places: list[Place] = Field(description="Matching places, best first.")


class GeocodeResult(BaseModel):
    """The place an address resolves to."""

    place_id: str = Field(description="Identifier of the resolved place.")
    latitude: float = Field(description="Latitude in degrees.")
    longitude: float = Field(description="Longitude in degrees.")


class Distance(BaseModel):
    """Straight-line distance between two places."""

    distance: float = Field(description="Distance value.")
    unit: Literal["miles"] = Field(description="Unit of the distance; always miles.")


class ConvertedDistance(BaseModel):
    """A distance expressed in another unit."""

    value: float = Field(description="The converted distance.")
    unit: str = Field(description="Unit of the converted distance.")


class Route(BaseModel):
    """A planned route."""

    route_id: str = Field(description="Identifier of the route.")
    distance_miles: float = Field(description="Length of the route in miles.")
    duration_minutes: float = Field(description="Expected travel time in minutes.")


class RouteDetails(BaseModel):
    """Turn-by-turn details of a route."""

    route_id: str = Field(description="Identifier of the route.")
    origin_place_id: str = Field(description="Where the route starts.")
    destination_place_id: str = Field(description="Where the route ends.")
    mode: str = Field(description="Travel mode.")
    steps: list[str] = Field(description="Instructions in order.")


class Trip(BaseModel):
    """An active navigation session."""

    trip_id: str = Field(description="Identifier of the navigation session.")
    route_id: str = Field(description="Route being followed.")
    status: str = Field(description="Session status.")


class Eta(BaseModel):
    """Remaining time of an active trip."""

    trip_id: str = Field(description="Identifier of the navigation session.")
    minutes_remaining: float = Field(description="Minutes until arrival.")


class SavedPlaces(BaseModel):
    """The user's saved places."""

    place_ids: list[str] = Field(description="Identifiers of the saved places.")


class Status(BaseModel):
    """Outcome of an action."""

    success: bool = Field(description="Whether the action succeeded.")
    message: str = Field(description="What happened.")


class NavigationEnv(ToolEnvironment):
    category = "navigation"
    description = "Finding places, measuring distances and following routes."

    def setup(self) -> None:
        self.places: dict[str, Place] = {}
        for city, lat, lon in _CITIES:
            for kind in self.rng.sample(_KINDS, 4):
                pid = self.new_id("PL")
                self.places[pid] = Place(
                    place_id=pid,
                    name=f"{city} {kind.replace('_', ' ').title()}",
                    kind=kind,
                    city=city,
                    latitude=round(lat + self.rng.uniform(-0.02, 0.02), 4),
                    longitude=round(lon + self.rng.uniform(-0.02, 0.02), 4),
                )
        self.routes: dict[str, RouteDetails] = {}
        self.trips: dict[str, Trip] = {}
        self.saved: list[str] = []

    def user_values(self) -> dict[str, list]:
        places = list(self.places.values())
        return {
            "query": sorted({p.kind.replace("_", " ") for p in places}),
            "city": sorted({p.city for p in places}),
            "address": [p.name for p in places],
            "value": [1.5, 12.0, 26.2],
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """A distance or a route between two places, never from a place to itself."""
        if param == "destination_place_id" and chosen and "origin_place_id" in chosen:
            return value != chosen["origin_place_id"]
        if param == "origin_place_id" and chosen and "destination_place_id" in chosen:
            return value != chosen["destination_place_id"]
        return True

    def _place(self, place_id: str) -> Place:
        return self.lookup(self.places, place_id, "unknown_place", f"no place with id '{place_id}'")

    def _miles(self, a: Place, b: Place) -> float:
        # haversine, earth radius in miles
        la1, lo1, la2, lo2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
        h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
        return round(2 * 3958.8 * math.asin(math.sqrt(h)), 2)

    @tool("Place search")
    def search_places(self, query: str, city: str | None = None) -> PlaceList:
        """Search places by name or kind, optionally inside one city.

        Args:
            query: Words to look for in the place's name or kind, e.g. 'museum'.
            city: Only return places in this city.
        """
        words = query.lower().split()
        hits = [
            p
            for p in self.places.values()
            if any(w in p.name.lower() or w in p.kind for w in words) and (city is None or p.city.lower() == city.lower())
        ]
        return PlaceList(places=hits[:5])

    @tool("Place search")
    def geocode_address(self, address: str) -> GeocodeResult:
        """Resolve a free-text address or landmark to a place.

        Args:
            address: The address or landmark name, e.g. 'Oakland Museum'.
        """
        text = address.lower()
        for place in self.places.values():
            if place.name.lower() in text or text in place.name.lower():
                return GeocodeResult(place_id=place.place_id, latitude=place.latitude, longitude=place.longitude)
        raise ToolError("not_found", f"could not resolve address '{address}'")

    @tool("Distance measurement")
    def get_distance(self, origin_place_id: str, destination_place_id: str) -> Distance:
        """Straight-line distance between two places, in miles.

        Args:
            origin_place_id: Identifier of the starting place.
            destination_place_id: Identifier of the destination place.
        """
        miles = self._miles(self._place(origin_place_id), self._place(destination_place_id))
        return Distance(distance=miles, unit="miles")

    @tool("Unit conversion")
    def convert_distance(
        self, value: float, from_unit: Literal["miles", "km", "meters", "feet"], to_unit: Literal["miles", "km", "meters", "feet"]
    ) -> ConvertedDistance:
        """Convert a distance between miles, kilometres, metres and feet.

        Args:
            value: The distance to convert.
            from_unit: Unit of the given value.
            to_unit: Unit to convert to.
        """
        meters = {"miles": 1609.344, "km": 1000.0, "meters": 1.0, "feet": 0.3048}
        return ConvertedDistance(value=round(value * meters[from_unit] / meters[to_unit], 3), unit=to_unit)

    @tool("Route planning")
    def plan_route(
        self, origin_place_id: str, destination_place_id: str, mode: Literal["driving", "cycling", "walking"] = "driving"
    ) -> Route:
        """Plan a route between two places for a travel mode.

        Args:
            origin_place_id: Identifier of the starting place.
            destination_place_id: Identifier of the destination place.
            mode: How the user travels.
        """
        a, b = self._place(origin_place_id), self._place(destination_place_id)
        miles = round(self._miles(a, b) * 1.25, 2)  # roads are longer than the straight line
        route_id = self.new_id("RT")
        self.routes[route_id] = RouteDetails(
            route_id=route_id,
            origin_place_id=a.place_id,
            destination_place_id=b.place_id,
            mode=mode,
            steps=[f"Leave {a.name}", f"Head toward {b.city}", f"Arrive at {b.name}"],
        )
        return Route(route_id=route_id, distance_miles=miles, duration_minutes=round(miles / _SPEED_MPH[mode] * 60, 1))

    @tool("Route planning")
    def get_route_details(self, route_id: str) -> RouteDetails:
        """Turn-by-turn instructions of a planned route.

        Args:
            route_id: Identifier of a route returned by plan_route.
        """
        return self.lookup(self.routes, route_id, "unknown_route", f"no route with id '{route_id}'")

    @tool("Turn-by-turn navigation")
    def start_navigation(self, route_id: str) -> Trip:
        """Start following a planned route.

        Args:
            route_id: Identifier of a route returned by plan_route.
        """
        if route_id not in self.routes:
            raise ToolError("unknown_route", f"no route with id '{route_id}'")
        trip_id = self.new_id("TR")
        self.trips[trip_id] = Trip(trip_id=trip_id, route_id=route_id, status="active")
        return self.trips[trip_id]

    @tool("Turn-by-turn navigation")
    def get_eta(self, trip_id: str) -> Eta:
        """Minutes remaining on an active trip.

        Args:
            trip_id: Identifier of a navigation session returned by start_navigation.
        """
        trip = self.trips.get(trip_id)
        if trip is None or trip.status != "active":
            raise ToolError("no_active_trip", f"no active trip with id '{trip_id}'")
        route = self.routes[trip.route_id]
        miles = self._miles(self.places[route.origin_place_id], self.places[route.destination_place_id])
        return Eta(trip_id=trip_id, minutes_remaining=round(miles * 1.25 / _SPEED_MPH[route.mode] * 60, 1))

    @tool("Turn-by-turn navigation")
    def stop_navigation(self, trip_id: str) -> Status:
        """Stop an active navigation session.

        Args:
            trip_id: Identifier of a navigation session returned by start_navigation.
        """
        trip = self.trips.get(trip_id)
        if trip is None or trip.status != "active":
            raise ToolError("no_active_trip", f"no active trip with id '{trip_id}'")
        trip.status = "stopped"
        return Status(success=True, message=f"navigation {trip_id} stopped")

    @tool("Saved places")
    def save_place(self, place_id: str) -> Status:
        """Add a place to the user's saved places.

        Args:
            place_id: Identifier of the place to save.
        """
        self._place(place_id)
        if place_id in self.saved:
            raise ToolError("already_saved", f"place '{place_id}' is already saved")
        self.saved.append(place_id)
        return Status(success=True, message=f"saved {place_id}")

    @tool("Saved places")
    def list_saved_places(self) -> SavedPlaces:
        """List the identifiers of the user's saved places."""
        return SavedPlaces(place_ids=list(self.saved))

    @tool("Saved places")
    def remove_saved_place(self, place_id: str) -> Status:
        """Remove a place from the user's saved places.

        Args:
            place_id: Identifier of a saved place.
        """
        if place_id not in self.saved:
            raise ToolError("not_saved", f"place '{place_id}' is not in the saved places")
        self.saved.remove(place_id)
        return Status(success=True, message=f"removed {place_id}")
