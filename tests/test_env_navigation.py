from magnet_lib.pool.envs.navigation import NavigationEnv
from tests.envs_support import ToolRecorder


def test_navigation_flows():
    r = ToolRecorder(NavigationEnv(seed=3))
    museums = r.ok("search_places", query="museum")["places"]
    assert museums and all("museum" in p["kind"] for p in museums)
    cafe = r.ok("search_places", query="cafe park", city="Oakland")["places"]
    origin = r.ok("geocode_address", address=museums[0]["name"])["place_id"]
    dest = museums[1]["place_id"]
    miles = r.ok("get_distance", origin_place_id=origin, destination_place_id=dest)
    km = r.ok("convert_distance", value=miles["distance"], from_unit="miles", to_unit="km")
    assert abs(km["value"] - miles["distance"] * 1.609344) < 0.01
    route = r.ok("plan_route", origin_place_id=origin, destination_place_id=dest, mode="cycling")
    assert r.ok("get_route_details", route_id=route["route_id"])["mode"] == "cycling"
    trip = r.ok("start_navigation", route_id=route["route_id"])
    assert r.ok("get_eta", trip_id=trip["trip_id"])["minutes_remaining"] > 0
    r.ok("stop_navigation", trip_id=trip["trip_id"])
    r.err("get_eta", "no_active_trip", trip_id=trip["trip_id"])
    r.ok("save_place", place_id=dest)
    r.err("save_place", "already_saved", place_id=dest)
    assert r.ok("list_saved_places")["place_ids"] == [dest]
    r.ok("remove_saved_place", place_id=dest)
    r.err("remove_saved_place", "not_saved", place_id=dest)
    r.err("get_distance", "unknown_place", origin_place_id="PL-0", destination_place_id=dest)
    r.err("geocode_address", "not_found", address="Atlantis")
    r.err("get_route_details", "unknown_route", route_id="RT-1")
    assert cafe is not None
    r.assert_all_called()
