"""Weather: current conditions, forecasts, history, alerts, air quality and unit conversion.

Flows: search_weather_locations / find_nearest_weather_location -> location_id ->
get_current_weather / get_air_quality / get_historical_weather / get_daily_forecast -> date ->
get_hourly_forecast; a temperature in Celsius -> convert_weather_temperature and a wind speed
in km/h -> convert_wind_speed (nested: the user asks "in Fahrenheit?" / "in mph?");
get_weather_alerts -> alert_id -> get_weather_alert_details; subscribe_to_weather_alerts ->
subscription_id -> list_weather_alert_subscriptions -> unsubscribe_from_weather_alerts.
All measurements are metric (Celsius, km/h, mm). "Today" in this world is 2025-07-07.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

# name, country, latitude, longitude, typical July high in Celsius
_LOCATIONS = [
    ("Seattle", "United States", 47.6062, -122.3321, 24),
    ("Phoenix", "United States", 33.4484, -112.0740, 41),
    ("Chicago", "United States", 41.8781, -87.6298, 29),
    ("Miami", "United States", 25.7617, -80.1918, 32),
    ("London", "United Kingdom", 51.5072, -0.1276, 23),
    ("Madrid", "Spain", 40.4168, -3.7038, 33),
    ("Berlin", "Germany", 52.5200, 13.4050, 25),
    ("Delhi", "India", 28.6139, 77.2090, 35),
    ("Tokyo", "Japan", 35.6762, 139.6503, 30),
    ("Sydney", "Australia", -33.8688, 151.2093, 17),
]
_CONDITIONS = ["sunny", "partly cloudy", "cloudy", "light rain", "thunderstorms", "windy"]
_TODAY = date(2025, 7, 7)
_FORECAST_DAYS = 7
_HISTORY_DAYS = 30
_SEVERITY = ("minor", "moderate", "severe", "extreme")
_ALERT_KINDS = [
    ("Heat advisory", "Temperatures well above normal.", "Drink water, avoid strenuous activity at midday."),
    ("Thunderstorm warning", "Severe thunderstorms with hail and gusts possible.", "Stay indoors and away from windows."),
    ("Flood watch", "Heavy rain may flood low-lying areas.", "Avoid driving through flooded roads."),
    ("Air quality alert", "Ozone and fine particles at unhealthy levels.", "Limit time outdoors; sensitive groups stay inside."),
]
_POLLUTANTS = ["pm2_5", "pm10", "ozone", "nitrogen_dioxide"]
_AQI_BANDS = [
    (50, "good", "Air quality is fine for everyone."),
    (100, "moderate", "Unusually sensitive people should limit long outdoor exertion."),
    (150, "unhealthy_for_sensitive_groups", "Children, older adults and people with lung disease should limit outdoor exertion."),
    (200, "unhealthy", "Everyone should limit prolonged outdoor exertion."),
    (500, "very_unhealthy", "Avoid outdoor activity."),
]

Severity = Literal["minor", "moderate", "severe", "extreme"]
TemperatureUnit = Literal["celsius", "fahrenheit", "kelvin"]
SpeedUnit = Literal["km/h", "mph", "m/s", "knots"]


class Location(BaseModel):
    location_id: str = Field(description="Identifier of the weather location.")
    name: str = Field(description="City name.")
    country: str = Field(description="Country of the city.")
    latitude: float = Field(description="Latitude in degrees.")
    longitude: float = Field(description="Longitude in degrees.")


class LocationList(BaseModel):
    """Weather locations matching the search."""

    locations: list[Location] = Field(description="Matching locations.")


class NearestLocation(BaseModel):
    """The weather location closest to a coordinate."""

    location_id: str = Field(description="Identifier of the nearest weather location.")
    name: str = Field(description="City name.")
    distance_km: float = Field(description="Distance from the given coordinate, in km.")


class CurrentWeather(BaseModel):
    """Conditions observed now at a location."""

    location_id: str = Field(description="Identifier of the location.")
    observed_at: str = Field(description="Observation time, YYYY-MM-DDTHH:MM local.")
    temperature: float = Field(description="Air temperature in degrees Celsius.")
    feels_like: float = Field(description="Apparent temperature in degrees Celsius.")
    humidity: int = Field(description="Relative humidity in percent.")
    wind_speed: float = Field(description="Wind speed in km/h.")
    wind_unit: Literal["km/h"] = Field("km/h", description="Unit of the wind speed; always km/h.")
    wind_direction: str = Field(description="Compass direction the wind blows from, e.g. 'NW'.")
    condition: str = Field(description="Sky and precipitation, e.g. 'light rain'.")
    unit: Literal["celsius"] = Field(description="Temperature unit; always celsius.")


class DayWeather(BaseModel):
    date: str = Field(description="The day, YYYY-MM-DD.")
    high_temperature: float = Field(description="Highest temperature in degrees Celsius.")
    low_temperature: float = Field(description="Lowest temperature in degrees Celsius.")
    condition: str = Field(description="Main condition of the day.")
    precipitation_chance: int = Field(description="Chance of rain in percent.")
    precipitation_mm: float = Field(description="Expected (or, for past days, measured) rain in mm.")


class DailyForecast(BaseModel):
    """Day-by-day forecast starting today."""

    location_id: str = Field(description="Identifier of the location.")
    days: list[DayWeather] = Field(description="One entry per day, today first.")
    unit: Literal["celsius"] = Field(description="Temperature unit; always celsius.")


class HourWeather(BaseModel):
    time: str = Field(description="Hour, HH:00 local.")
    temperature: float = Field(description="Temperature in degrees Celsius.")
    precipitation_chance: int = Field(description="Chance of rain in percent.")
    condition: str = Field(description="Condition in that hour.")


class HourlyForecast(BaseModel):
    """Hour-by-hour forecast of one day."""

    location_id: str = Field(description="Identifier of the location.")
    date: str = Field(description="The day, YYYY-MM-DD.")
    hours: list[HourWeather] = Field(description="Every third hour from 00:00 to 21:00.")
    unit: Literal["celsius"] = Field(description="Temperature unit; always celsius.")


class HistoricalWeather(DayWeather):
    """Measured weather of a past day."""

    location_id: str = Field(description="Identifier of the location.")
    unit: Literal["celsius"] = Field(description="Temperature unit; always celsius.")


class AlertSummary(BaseModel):
    alert_id: str = Field(description="Identifier of the alert.")
    event: str = Field(description="Kind of alert, e.g. 'Heat advisory'.")
    severity: Severity = Field(description="How serious the alert is.")
    headline: str = Field(description="One-line summary.")


class AlertList(BaseModel):
    """Active alerts at a location."""

    location_id: str = Field(description="Identifier of the location.")
    alerts: list[AlertSummary] = Field(description="Active alerts, most severe first.")


class AlertDetails(AlertSummary):
    """Full text of one alert."""

    location_id: str = Field(description="Location the alert covers.")
    description: str = Field(description="What is expected.")
    instructions: str = Field(description="What people should do.")
    starts: str = Field(description="When the alert starts, YYYY-MM-DDTHH:MM.")
    expires: str = Field(description="When the alert ends, YYYY-MM-DDTHH:MM.")


class AirQuality(BaseModel):
    """Current air quality at a location."""

    location_id: str = Field(description="Identifier of the location.")
    aqi: int = Field(description="US air quality index, 0-500 (higher is worse).")
    category: str = Field(description="AQI band, e.g. 'moderate'.")
    dominant_pollutant: str = Field(description="Pollutant that drives the index.")
    pm2_5: float = Field(description="Fine particles in micrograms per cubic metre.")
    health_advice: str = Field(description="What the band means for outdoor activity.")


class Subscription(BaseModel):
    """A subscription to alert notifications for a location."""

    subscription_id: str = Field(description="Identifier of the subscription.")
    location_id: str = Field(description="Location watched.")
    min_severity: Severity = Field(description="Lowest severity that triggers a notification.")
    active: bool = Field(description="False once unsubscribed.")


class SubscriptionList(BaseModel):
    """The user's active alert subscriptions."""

    subscriptions: list[Subscription] = Field(description="Active subscriptions.")


class ConvertedTemperature(BaseModel):
    """A temperature in another unit."""

    temperature: float = Field(description="The converted temperature.")
    unit: TemperatureUnit = Field(description="Unit of the converted temperature.")


class ConvertedSpeed(BaseModel):
    """A wind speed in another unit."""

    wind_speed: float = Field(description="The converted speed.")
    unit: SpeedUnit = Field(description="Unit of the converted speed.")


class _Place(BaseModel):
    location: Location
    current: CurrentWeather
    days: list[DayWeather]
    air: AirQuality


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolError("invalid_date", f"'{value}' is not a date in YYYY-MM-DD form") from None


class WeatherEnv(ToolEnvironment):
    category = "weather"
    description = "Weather conditions, forecasts, history, alerts and air quality by location."

    def setup(self) -> None:
        rng = self.rng
        self.places: dict[str, _Place] = {}
        for name, country, lat, lon, typical_high in _LOCATIONS:
            lid = self.new_id("LOC")
            days = []
            for offset in range(_FORECAST_DAYS):
                high = round(typical_high + rng.uniform(-4, 4), 1)
                condition = rng.choice(_CONDITIONS)
                rainy = condition in ("light rain", "thunderstorms")
                days.append(
                    DayWeather(
                        date=(_TODAY + timedelta(days=offset)).isoformat(),
                        high_temperature=high,
                        low_temperature=round(high - rng.uniform(6, 12), 1),
                        condition=condition,
                        precipitation_chance=rng.randrange(60, 100) if rainy else rng.randrange(0, 30),
                        precipitation_mm=round(rng.uniform(2, 25), 1) if rainy else 0.0,
                    )
                )
            today = days[0]
            temperature = round(today.low_temperature + (today.high_temperature - today.low_temperature) * rng.uniform(0.4, 0.9), 1)
            humidity = rng.randrange(20, 95)
            aqi = rng.randrange(10, 190)
            band = next(b for b in _AQI_BANDS if aqi <= b[0])
            self.places[lid] = _Place(
                location=Location(location_id=lid, name=name, country=country, latitude=lat, longitude=lon),
                current=CurrentWeather(
                    location_id=lid,
                    observed_at=f"{_TODAY.isoformat()}T{rng.randrange(8, 18):02d}:00",
                    temperature=temperature,
                    feels_like=round(temperature + (humidity - 50) / 20, 1),
                    humidity=humidity,
                    wind_speed=round(rng.uniform(0, 45), 1),
                    wind_direction=rng.choice(["N", "NE", "E", "SE", "S", "SW", "W", "NW"]),
                    condition=today.condition,
                    unit="celsius",
                ),
                days=days,
                air=AirQuality(
                    location_id=lid,
                    aqi=aqi,
                    category=band[1],
                    dominant_pollutant=rng.choice(_POLLUTANTS),
                    pm2_5=round(aqi * 0.35 + rng.uniform(0, 5), 1),
                    health_advice=band[2],
                ),
            )
        self.alerts: dict[str, AlertDetails] = {}
        for lid in rng.sample(list(self.places), 4):
            event, description, instructions = rng.choice(_ALERT_KINDS)
            start_day = _TODAY + timedelta(days=rng.randrange(0, 2))
            alert_id = self.new_id("ALT")
            self.alerts[alert_id] = AlertDetails(
                alert_id=alert_id,
                event=event,
                severity=rng.choice(_SEVERITY),
                headline=f"{event} for {self.places[lid].location.name}",
                location_id=lid,
                description=description,
                instructions=instructions,
                starts=f"{start_day.isoformat()}T{rng.randrange(0, 24):02d}:00",
                expires=f"{(start_day + timedelta(days=rng.randrange(1, 3))).isoformat()}T{rng.randrange(0, 24):02d}:00",
            )
        self.subscriptions: dict[str, Subscription] = {}

    def user_values(self) -> dict[str, list]:
        return {
            "query": [name for name, *_ in _LOCATIONS],
            "latitude": [47.61, 40.71, 51.5, 35.68],
            "longitude": [-122.33, -74.0, -0.12, 139.65],
            "date": [(_TODAY - timedelta(days=d)).isoformat() for d in (1, 7, 14)]
            + [(_TODAY + timedelta(days=d)).isoformat() for d in (1, 2)],
            "temperature": [21.5, 30.0, -5.0],
            "wind_speed": [15.0, 40.0],
        }

    # ------------------------------------------------------------------ helpers
    def _place(self, location_id: str) -> _Place:
        return self.lookup(self.places, location_id, "unknown_location", f"no weather location with id '{location_id}'")

    # ------------------------------------------------------------------ conditions
    @tool("Weather conditions")
    def search_weather_locations(self, query: str) -> LocationList:
        """Find weather locations by city or country name.

        Args:
            query: City or country name, e.g. 'Berlin' or 'Japan'.
        """
        text = query.strip().lower()
        hits = [
            p.location for p in self.places.values() if text and (text in p.location.name.lower() or text in p.location.country.lower())
        ]
        return LocationList(locations=hits)

    @tool("Weather conditions")
    def find_nearest_weather_location(self, latitude: float, longitude: float) -> NearestLocation:
        """The weather location closest to a coordinate.

        Args:
            latitude: Latitude in degrees (-90 to 90).
            longitude: Longitude in degrees (-180 to 180).
        """
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ToolError("invalid_coordinates", f"({latitude}, {longitude}) is not a coordinate on earth")

        def km(loc: Location) -> float:
            la1, lo1, la2, lo2 = map(math.radians, (latitude, longitude, loc.latitude, loc.longitude))
            h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
            return 2 * 6371.0 * math.asin(math.sqrt(h))

        best = min((p.location for p in self.places.values()), key=km)
        return NearestLocation(location_id=best.location_id, name=best.name, distance_km=round(km(best), 1))

    @tool("Weather conditions")
    def get_current_weather(self, location_id: str) -> CurrentWeather:
        """Current conditions at a location: temperature (Celsius), humidity, wind (km/h) and sky.

        Args:
            location_id: Identifier of the weather location.
        """
        return self._place(location_id).current

    @tool("Weather conditions")
    def get_air_quality(self, location_id: str) -> AirQuality:
        """Current air quality index at a location, its band and health advice.

        Args:
            location_id: Identifier of the weather location.
        """
        return self._place(location_id).air

    @tool("Weather conditions")
    def get_historical_weather(self, location_id: str, date: str) -> HistoricalWeather:
        """Measured weather of a past day (up to 30 days back) at a location.

        Args:
            location_id: Identifier of the weather location.
            date: The past day, YYYY-MM-DD.
        """
        place = self._place(location_id)
        day = _parse_date(date)
        if not _TODAY - timedelta(days=_HISTORY_DAYS) <= day < _TODAY:
            raise ToolError("date_out_of_range", f"history covers {_TODAY - timedelta(days=_HISTORY_DAYS)} to {_TODAY - timedelta(days=1)}")
        # derived from (world seed, location, day) so asking twice gives the same answer
        rng = random.Random(f"{self.seed}:{location_id}:{date}")
        typical = place.days[0].high_temperature
        high = round(typical + rng.uniform(-5, 5), 1)
        condition = rng.choice(_CONDITIONS)
        rainy = condition in ("light rain", "thunderstorms")
        return HistoricalWeather(
            location_id=location_id,
            date=day.isoformat(),
            high_temperature=high,
            low_temperature=round(high - rng.uniform(6, 12), 1),
            condition=condition,
            precipitation_chance=100 if rainy else 0,
            precipitation_mm=round(rng.uniform(1, 30), 1) if rainy else 0.0,
            unit="celsius",
        )

    # ------------------------------------------------------------------ forecast
    @tool("Weather forecast")
    def get_daily_forecast(self, location_id: str, days: int = 3) -> DailyForecast:
        """Daily highs, lows, condition and rain chance for the next days, starting today.

        Args:
            location_id: Identifier of the weather location.
            days: Number of days, 1 to 7.
        """
        place = self._place(location_id)
        if not 1 <= days <= _FORECAST_DAYS:
            raise ToolError("invalid_days", f"the forecast covers 1 to {_FORECAST_DAYS} days, asked for {days}")
        return DailyForecast(location_id=location_id, days=place.days[:days], unit="celsius")

    @tool("Weather forecast")
    def get_hourly_forecast(self, location_id: str, date: str) -> HourlyForecast:
        """Forecast for every third hour of one day within the next seven days.

        Args:
            location_id: Identifier of the weather location.
            date: The day, YYYY-MM-DD (today or one of the next six days).
        """
        place = self._place(location_id)
        _parse_date(date)
        day = next((d for d in place.days if d.date == date), None)
        if day is None:
            raise ToolError("date_out_of_range", f"hourly forecasts cover {place.days[0].date} to {place.days[-1].date}")
        hours = []
        for hour in range(0, 24, 3):
            warmth = (1 + math.cos(2 * math.pi * (hour - 15) / 24)) / 2  # warmest at 15:00, coolest at 03:00
            hours.append(
                HourWeather(
                    time=f"{hour:02d}:00",
                    temperature=round(day.low_temperature + (day.high_temperature - day.low_temperature) * warmth, 1),
                    precipitation_chance=day.precipitation_chance,
                    condition=day.condition,
                )
            )
        return HourlyForecast(location_id=location_id, date=date, hours=hours, unit="celsius")

    # ------------------------------------------------------------------ alerts
    @tool("Weather alerts")
    def get_weather_alerts(self, location_id: str) -> AlertList:
        """Active weather alerts at a location, most severe first.

        Args:
            location_id: Identifier of the weather location.
        """
        self._place(location_id)
        found = sorted((a for a in self.alerts.values() if a.location_id == location_id), key=lambda a: -_SEVERITY.index(a.severity))
        return AlertList(
            location_id=location_id,
            alerts=[AlertSummary(alert_id=a.alert_id, event=a.event, severity=a.severity, headline=a.headline) for a in found],
        )

    @tool("Weather alerts")
    def get_weather_alert_details(self, alert_id: str) -> AlertDetails:
        """Full text of an alert: what is expected, what to do, when it starts and ends.

        Args:
            alert_id: Identifier of an alert returned by get_weather_alerts.
        """
        return self.lookup(self.alerts, alert_id, "unknown_alert", f"no active alert with id '{alert_id}'")

    @tool("Weather alerts")
    def subscribe_to_weather_alerts(self, location_id: str, min_severity: Severity = "moderate") -> Subscription:
        """Get notified of new alerts at a location from a minimum severity up.

        Args:
            location_id: Identifier of the weather location to watch.
            min_severity: Lowest severity that should trigger a notification.
        """
        self._place(location_id)
        if any(s.location_id == location_id and s.active for s in self.subscriptions.values()):
            raise ToolError("already_subscribed", f"alerts for '{location_id}' are already subscribed; unsubscribe first to change it")
        sub = Subscription(subscription_id=self.new_id("SUB"), location_id=location_id, min_severity=min_severity, active=True)
        self.subscriptions[sub.subscription_id] = sub
        return sub

    @tool("Weather alerts")
    def list_weather_alert_subscriptions(self) -> SubscriptionList:
        """List the user's active alert subscriptions."""
        return SubscriptionList(subscriptions=[s for s in self.subscriptions.values() if s.active])

    @tool("Weather alerts")
    def unsubscribe_from_weather_alerts(self, subscription_id: str) -> Subscription:
        """Stop alert notifications of a subscription.

        Args:
            subscription_id: Identifier of the subscription to end.
        """
        sub = self.subscriptions.get(subscription_id)
        if sub is None:
            raise ToolError("unknown_subscription", f"no subscription with id '{subscription_id}'")
        if not sub.active:
            raise ToolError("subscription_inactive", f"subscription '{subscription_id}' is already ended")
        sub.active = False
        return sub

    # ------------------------------------------------------------------ units
    @tool("Weather unit conversion")
    def convert_weather_temperature(self, temperature: float, from_unit: TemperatureUnit, to_unit: TemperatureUnit) -> ConvertedTemperature:
        """Convert a temperature between Celsius, Fahrenheit and Kelvin.

        Args:
            temperature: The temperature to convert.
            from_unit: Unit of the given temperature.
            to_unit: Unit to convert to.
        """
        celsius = {"celsius": temperature, "fahrenheit": (temperature - 32) * 5 / 9, "kelvin": temperature - 273.15}[from_unit]
        if celsius < -273.15:
            raise ToolError("below_absolute_zero", f"{temperature} {from_unit} is below absolute zero")
        value = {"celsius": celsius, "fahrenheit": celsius * 9 / 5 + 32, "kelvin": celsius + 273.15}[to_unit]
        return ConvertedTemperature(temperature=round(value, 2), unit=to_unit)

    @tool("Weather unit conversion")
    def convert_wind_speed(self, wind_speed: float, from_unit: SpeedUnit, to_unit: SpeedUnit) -> ConvertedSpeed:
        """Convert a wind speed between km/h, mph, metres per second and knots.

        Args:
            wind_speed: The speed to convert.
            from_unit: Unit of the given speed.
            to_unit: Unit to convert to.
        """
        if wind_speed < 0:
            raise ToolError("invalid_speed", "a wind speed cannot be negative")
        kmh = {"km/h": 1.0, "mph": 1.609344, "m/s": 3.6, "knots": 1.852}
        return ConvertedSpeed(wind_speed=round(wind_speed * kmh[from_unit] / kmh[to_unit], 2), unit=to_unit)
