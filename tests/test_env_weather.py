import pytest

from magnet_lib.pool.envs.weather import WeatherEnv
from tests.envs_support import ToolRecorder


def conditions_flow(r: ToolRecorder) -> None:
    berlin = r.ok("search_weather_locations", query="berlin")["locations"]
    assert [loc["name"] for loc in berlin] == ["Berlin"]
    us = r.ok("search_weather_locations", query="United States")["locations"]
    assert len(us) == 4
    lid = berlin[0]["location_id"]

    now = r.ok("get_current_weather", location_id=lid)
    assert now["unit"] == "celsius"
    # nested: "and in Fahrenheit?" / "in mph?"
    fahrenheit = r.ok("convert_weather_temperature", temperature=now["temperature"], from_unit="celsius", to_unit="fahrenheit")
    assert fahrenheit["temperature"] == round(now["temperature"] * 9 / 5 + 32, 2)
    back = r.ok("convert_weather_temperature", temperature=fahrenheit["temperature"], from_unit="fahrenheit", to_unit="kelvin")
    assert abs(back["temperature"] - (now["temperature"] + 273.15)) < 0.01
    mph = r.ok("convert_wind_speed", wind_speed=now["wind_speed"], from_unit="km/h", to_unit="mph")
    assert abs(mph["wind_speed"] - now["wind_speed"] / 1.609344) < 0.01
    r.err("convert_weather_temperature", "below_absolute_zero", temperature=-300.0, from_unit="celsius", to_unit="kelvin")
    r.err("convert_wind_speed", "invalid_speed", wind_speed=-1.0, from_unit="knots", to_unit="m/s")

    near = r.ok("find_nearest_weather_location", latitude=47.61, longitude=-122.33)
    assert near["name"] == "Seattle" and near["distance_km"] < 5
    air = r.ok("get_air_quality", location_id=near["location_id"])
    assert 0 <= air["aqi"] <= 500 and air["category"] and air["health_advice"]
    r.err("find_nearest_weather_location", "invalid_coordinates", latitude=123.0, longitude=0.0)

    yesterday = r.ok("get_historical_weather", location_id=lid, date="2025-07-06")
    assert yesterday == r.ok("get_historical_weather", location_id=lid, date="2025-07-06")
    assert yesterday["low_temperature"] < yesterday["high_temperature"]
    r.err("get_historical_weather", "date_out_of_range", location_id=lid, date="2025-07-08")
    r.err("get_historical_weather", "invalid_date", location_id=lid, date="last week")
    r.err("get_current_weather", "unknown_location", location_id="LOC-1")


def forecast_flow(r: ToolRecorder) -> None:
    lid = r.ok("search_weather_locations", query="Tokyo")["locations"][0]["location_id"]
    week = r.ok("get_daily_forecast", location_id=lid, days=7)["days"]
    assert [d["date"] for d in week][:2] == ["2025-07-07", "2025-07-08"] and len(week) == 7
    assert r.ok("get_daily_forecast", location_id=lid)["days"] == week[:3]
    day = week[2]
    hourly = r.ok("get_hourly_forecast", location_id=lid, date=day["date"])
    temps = {h["time"]: h["temperature"] for h in hourly["hours"]}
    assert temps["15:00"] == day["high_temperature"] and temps["03:00"] == day["low_temperature"]
    assert max(temps.values()) == day["high_temperature"]
    r.err("get_hourly_forecast", "date_out_of_range", location_id=lid, date="2025-07-20")
    r.err("get_daily_forecast", "invalid_days", location_id=lid, days=10)


def alert_flow(r: ToolRecorder) -> None:
    locations = [loc for city in r.env.user_values()["query"] for loc in r.ok("search_weather_locations", query=city)["locations"]]
    alerted = None
    for loc in locations:
        alerts = r.ok("get_weather_alerts", location_id=loc["location_id"])["alerts"]
        if alerts:
            alerted = loc["location_id"]
            break
    assert alerted, "the world always has active alerts"
    details = r.ok("get_weather_alert_details", alert_id=alerts[0]["alert_id"])
    assert details["location_id"] == alerted and details["expires"] > details["starts"] and details["instructions"]

    sub = r.ok("subscribe_to_weather_alerts", location_id=alerted, min_severity="severe")
    r.err("subscribe_to_weather_alerts", "already_subscribed", location_id=alerted)
    listed = r.ok("list_weather_alert_subscriptions")["subscriptions"]
    assert [s["subscription_id"] for s in listed] == [sub["subscription_id"]]
    ended = r.ok("unsubscribe_from_weather_alerts", subscription_id=listed[0]["subscription_id"])
    assert not ended["active"]
    assert r.ok("list_weather_alert_subscriptions")["subscriptions"] == []
    r.err("unsubscribe_from_weather_alerts", "subscription_inactive", subscription_id=sub["subscription_id"])
    r.ok("subscribe_to_weather_alerts", location_id=alerted)  # allowed again once the old one ended
    r.err("unsubscribe_from_weather_alerts", "unknown_subscription", subscription_id="SUB-1")
    r.err("get_weather_alert_details", "unknown_alert", alert_id="ALT-1")
    r.err("get_weather_alerts", "unknown_location", location_id="LOC-1")


@pytest.mark.parametrize("seed", [0, 6, 21])
def test_weather_flows(seed):
    r = ToolRecorder(WeatherEnv(seed=seed))
    conditions_flow(r)
    forecast_flow(r)
    alert_flow(r)
    r.assert_all_called()
