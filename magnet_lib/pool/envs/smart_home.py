"""Smart home: rooms, devices, power, thermostats, lights, scenes, schedules and energy use.

Flows: list_smart_rooms -> room_id -> list_room_devices -> device_id -> get_device_status (online
gate) -> set_device_power / set_light_state / set_thermostat_temperature;
get_thermostat_reading (temperature in Celsius) -> convert_thermostat_temperature (the user thinks
in Fahrenheit) and back -> set_thermostat_temperature; list_home_scenes -> scene_id ->
activate_home_scene -> device_id -> get_device_status; create_device_schedule -> schedule_id ->
list_device_schedules / delete_device_schedule; device_id -> get_device_energy_usage.

Thermostats work in degrees Celsius; offline devices refuse every command.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

DeviceType = Literal["light", "thermostat", "plug", "fan", "tv", "speaker"]
LightColor = Literal["warm white", "cool white", "red", "blue", "green", "purple"]
Scale = Literal["celsius", "fahrenheit"]

# room -> device types that may be in it (the first one always is)
_ROOMS = {
    "Living Room": ["thermostat", "light", "tv", "speaker", "light"],
    "Kitchen": ["light", "plug", "speaker"],
    "Bedroom": ["light", "thermostat", "fan"],
    "Office": ["light", "plug", "fan", "speaker"],
    "Hallway": ["light"],
    "Garage": ["plug", "light"],
}
_WATTS = {"light": 9.0, "thermostat": 1500.0, "plug": 120.0, "fan": 45.0, "tv": 110.0, "speaker": 8.0}
_PRICE_PER_KWH = 0.31  # USD
_MIN_C, _MAX_C = 10.0, 30.0


class Room(BaseModel):
    room_id: str = Field(description="Identifier of the room.")
    name: str = Field(description="Name of the room.")
    device_count: int = Field(description="Number of devices in the room.")


class RoomList(BaseModel):
    """The rooms of the home."""

    rooms: list[Room] = Field(description="All rooms.")


class DeviceSummary(BaseModel):
    device_id: str = Field(description="Identifier of the device.")
    name: str = Field(description="Name of the device.")
    device_type: DeviceType = Field(description="Kind of device.")


class RoomDevices(BaseModel):
    """The devices in one room."""

    room_id: str = Field(description="Identifier of the room.")
    devices: list[DeviceSummary] = Field(description="Devices in the room.")


class DeviceStatus(BaseModel):
    """Connection and power state of a device."""

    device_id: str = Field(description="Identifier of the device.")
    name: str = Field(description="Name of the device.")
    device_type: DeviceType = Field(description="Kind of device.")
    room_id: str = Field(description="Room the device is in.")
    online: bool = Field(description="Whether the device is reachable; offline devices ignore commands.")
    power: Literal["on", "off"] = Field(description="Whether the device is on.")


class ThermostatReading(BaseModel):
    """What a thermostat measures and aims for, in degrees Celsius."""

    device_id: str = Field(description="Identifier of the thermostat.")
    temperature: float = Field(description="Current room temperature in degrees Celsius.")
    target_temperature: float = Field(description="Temperature the thermostat aims for, in degrees Celsius.")
    mode: Literal["heat", "cool", "auto", "off"] = Field(description="Operating mode.")
    humidity_percent: int = Field(description="Relative humidity in percent.")


class ConvertedTemperature(BaseModel):
    """A temperature expressed on another scale."""

    temperature: float = Field(description="The converted temperature, rounded to one decimal.")
    scale: Scale = Field(description="Scale of the converted temperature.")


class LightState(BaseModel):
    """The state of a light."""

    device_id: str = Field(description="Identifier of the light.")
    power: Literal["on", "off"] = Field(description="Whether the light is on.")
    brightness_percent: int = Field(description="Brightness from 0 to 100.")
    color: LightColor = Field(description="Light color.")


class Scene(BaseModel):
    scene_id: str = Field(description="Identifier of the scene.")
    name: str = Field(description="Name of the scene.")
    devices: list[DeviceSummary] = Field(description="Devices the scene changes.")


class SceneList(BaseModel):
    """Saved scenes of the home."""

    scenes: list[Scene] = Field(description="All scenes.")


class SceneDeviceResult(BaseModel):
    device_id: str = Field(description="Identifier of the device.")
    applied: bool = Field(description="True when the scene changed the device; False when it was offline and skipped.")


class SceneActivation(BaseModel):
    """Outcome of activating a scene."""

    scene_id: str = Field(description="Identifier of the scene.")
    results: list[SceneDeviceResult] = Field(description="What happened to each device of the scene.")


class DeviceSchedule(BaseModel):
    """A daily on/off schedule of a device."""

    schedule_id: str = Field(description="Identifier of the schedule.")
    device_id: str = Field(description="Device the schedule switches.")
    time: str = Field(description="Time of day it runs, HH:MM (24-hour).")
    power: Literal["on", "off"] = Field(description="What it does to the device.")


class ScheduleList(BaseModel):
    """Device schedules."""

    schedules: list[DeviceSchedule] = Field(description="Schedules, by time of day.")


class ScheduleDeletion(BaseModel):
    """Outcome of deleting a schedule."""

    schedule_id: str = Field(description="Identifier of the deleted schedule.")
    device_id: str = Field(description="Device the schedule switched.")
    remaining_schedules: int = Field(description="Schedules left for that device.")


class EnergyUsage(BaseModel):
    """Electricity a device used over recent days."""

    device_id: str = Field(description="Identifier of the device.")
    days: int = Field(description="Number of days counted, ending today.")
    energy_kwh: float = Field(description="Energy used in kilowatt-hours.")
    estimated_cost: float = Field(description="Cost of that energy in USD.")


class _Device(BaseModel):
    status: DeviceStatus
    brightness_percent: int = 0
    color: LightColor = "warm white"
    temperature: float = 0.0
    target_temperature: float = 0.0
    mode: Literal["heat", "cool", "auto", "off"] = "off"
    humidity_percent: int = 0
    daily_kwh: list[float] = []  # most recent day last


class _SceneAction(BaseModel):
    device_id: str
    power: Literal["on", "off"]
    brightness_percent: int | None = None
    target_temperature: float | None = None


class SmartHomeEnv(ToolEnvironment):
    category = "smart_home"
    description = "Controlling the devices of a home: power, thermostats, lights, scenes, schedules and energy use."

    def setup(self) -> None:
        rng = self.rng
        self.rooms: dict[str, str] = {}  # room_id -> name
        self.devices: dict[str, _Device] = {}
        names = ["Living Room", "Kitchen", "Bedroom"] + rng.sample(["Office", "Hallway", "Garage"], 2)
        for room in names:
            room_id = self.new_id("RM", 4)
            self.rooms[room_id] = room
            types = _ROOMS[room]
            chosen = [types[0]] + [t for t in types[1:] if rng.random() < 0.6]
            for n, kind in enumerate(chosen):
                device_id = self.new_id("DV")
                power = rng.choice(["on", "off"])
                number = f" {chosen[: n + 1].count(kind)}" if chosen.count(kind) > 1 else ""
                device = _Device(
                    status=DeviceStatus(
                        device_id=device_id,
                        name=f"{room} {kind.upper() if kind == 'tv' else kind.title()}{number}",
                        device_type=kind,
                        room_id=room_id,
                        online=rng.random() < 0.85,
                        power=power,
                    ),
                    daily_kwh=[round(_WATTS[kind] * rng.uniform(0.5, 8.0) / 1000, 3) for _ in range(30)],
                )
                if kind == "light":
                    device.brightness_percent = rng.choice([40, 60, 80, 100]) if power == "on" else 0
                if kind == "thermostat":
                    device.status.online = True
                    device.temperature = round(rng.uniform(16.0, 25.0), 1)
                    device.target_temperature = float(rng.choice([19, 20, 21, 22]))
                    device.mode = "auto" if power == "on" else "off"
                    device.humidity_percent = rng.randint(30, 60)
                self.devices[device_id] = device
        living_room = next(iter(self.rooms))

        def by_type(kind: str, room_id: str | None = None) -> list[str]:
            return [d for d, x in self.devices.items() if x.status.device_type == kind and room_id in (None, x.status.room_id)]

        self.scenes: dict[str, Scene] = {}
        self._scene_actions: dict[str, list[_SceneAction]] = {}
        plans = {
            "Movie Night": [_SceneAction(device_id=d, power="on", brightness_percent=15) for d in by_type("light", living_room)]
            + [_SceneAction(device_id=d, power="on") for d in by_type("tv", living_room)]
            + [_SceneAction(device_id=d, power="off") for d in by_type("light") if d not in by_type("light", living_room)][:2],
            "Good Night": [_SceneAction(device_id=d, power="off") for d in by_type("light")]
            + [_SceneAction(device_id=d, power="on", target_temperature=18.0) for d in by_type("thermostat")],
            "Morning": [_SceneAction(device_id=d, power="on", brightness_percent=80) for d in by_type("light")[:3]]
            + [_SceneAction(device_id=d, power="on", target_temperature=21.0) for d in by_type("thermostat")],
        }
        for name, actions in plans.items():
            scene_id = self.new_id("SC", 4)
            self.scenes[scene_id] = Scene(scene_id=scene_id, name=name, devices=[self._summary(self.devices[a.device_id]) for a in actions])
            self._scene_actions[scene_id] = actions
        self.schedules: dict[str, DeviceSchedule] = {}
        plug = (by_type("plug") or by_type("light"))[0]
        sid = self.new_id("SH")
        self.schedules[sid] = DeviceSchedule(schedule_id=sid, device_id=plug, time="07:00", power="on")

    def user_values(self) -> dict[str, list]:
        return {
            "temperature": [68.0, 72.0, 21.5, 19.0],
            "brightness_percent": [20, 50, 75, 100],
            "time": ["06:30", "07:00", "18:45", "22:30"],
            "days": [1, 7, 30],
        }

    #: tools that act on one kind of device only
    _DEVICE_KIND: ClassVar[dict[str, str]] = {"get_thermostat_reading": "thermostat", "set_thermostat_temperature": "thermostat"}

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """A thermostat for the thermostat tools (a light has no temperature), and online."""
        kind = self._DEVICE_KIND.get(tool)
        if kind is None or param != "device_id":
            return True
        device = self.devices.get(value)
        return device is not None and device.status.device_type == kind and device.status.online

    # ------------------------------------------------------------------ helpers
    def _device(self, device_id: str) -> _Device:
        return self.lookup(self.devices, device_id, "unknown_device", f"no device with id '{device_id}'")

    def _online(self, device_id: str, kind: str | None = None) -> _Device:
        device = self._device(device_id)
        if kind and device.status.device_type != kind:
            raise ToolError(f"not_a_{kind}", f"'{device.status.name}' is a {device.status.device_type}, not a {kind}")
        if not device.status.online:
            raise ToolError("device_offline", f"'{device.status.name}' is offline; check its connection and try again later")
        return device

    def _summary(self, device: _Device) -> DeviceSummary:
        return DeviceSummary(device_id=device.status.device_id, name=device.status.name, device_type=device.status.device_type)

    def _reading(self, device: _Device) -> ThermostatReading:
        return ThermostatReading(
            device_id=device.status.device_id,
            temperature=device.temperature,
            target_temperature=device.target_temperature,
            mode=device.mode,
            humidity_percent=device.humidity_percent,
        )

    def _light(self, device: _Device) -> LightState:
        return LightState(
            device_id=device.status.device_id, power=device.status.power, brightness_percent=device.brightness_percent, color=device.color
        )

    def _set_power(self, device: _Device, power: str) -> None:
        device.status.power = power
        kind = device.status.device_type
        if kind == "light":
            device.brightness_percent = (device.brightness_percent or 100) if power == "on" else 0
        if kind == "thermostat":
            device.mode = ("auto" if device.mode == "off" else device.mode) if power == "on" else "off"

    # ------------------------------------------------------------------ devices
    @tool("Device control")
    def list_smart_rooms(self) -> RoomList:
        """The rooms of the home and how many devices each has."""
        counts = {room_id: 0 for room_id in self.rooms}
        for device in self.devices.values():
            counts[device.status.room_id] += 1
        return RoomList(rooms=[Room(room_id=r, name=n, device_count=counts[r]) for r, n in self.rooms.items()])

    @tool("Device control")
    def list_room_devices(self, room_id: str) -> RoomDevices:
        """The devices installed in a room.

        Args:
            room_id: Identifier of the room.
        """
        if room_id not in self.rooms:
            raise ToolError("unknown_room", f"no room with id '{room_id}'")
        devices = [self._summary(d) for d in self.devices.values() if d.status.room_id == room_id]
        return RoomDevices(room_id=room_id, devices=devices)

    @tool("Device control")
    def get_device_status(self, device_id: str) -> DeviceStatus:
        """Whether a device is online and whether it is on; check before sending it commands.

        Args:
            device_id: Identifier of the device.
        """
        return self._device(device_id).status

    @tool("Device control")
    def set_device_power(self, device_id: str, power: Literal["on", "off"]) -> DeviceStatus:
        """Switch a device on or off; the device must be online.

        Args:
            device_id: Identifier of the device.
            power: 'on' or 'off'.
        """
        device = self._online(device_id)
        self._set_power(device, power)
        return device.status

    @tool("Device control")
    def set_light_state(self, device_id: str, brightness_percent: int, color: LightColor = "warm white") -> LightState:
        """Set a light's brightness and color; brightness 0 switches it off.

        Args:
            device_id: Identifier of a light.
            brightness_percent: Brightness from 0 to 100.
            color: Light color.
        """
        device = self._online(device_id, "light")
        if not 0 <= brightness_percent <= 100:
            raise ToolError("out_of_range", "brightness_percent must be between 0 and 100")
        device.brightness_percent, device.color = brightness_percent, color
        device.status.power = "on" if brightness_percent > 0 else "off"
        return self._light(device)

    # ------------------------------------------------------------------ climate
    @tool("Climate control")
    def get_thermostat_reading(self, device_id: str) -> ThermostatReading:
        """Current and target temperature of a thermostat, in degrees Celsius, and its mode.

        Args:
            device_id: Identifier of a thermostat.
        """
        return self._reading(self._online(device_id, "thermostat"))

    @tool("Climate control")
    def convert_thermostat_temperature(self, temperature: float, from_scale: Scale, to_scale: Scale) -> ConvertedTemperature:
        """Convert a temperature between Celsius and Fahrenheit.

        Args:
            temperature: The temperature to convert.
            from_scale: Scale of the given temperature.
            to_scale: Scale to convert to.
        """
        value = temperature
        if from_scale == "celsius" and to_scale == "fahrenheit":
            value = temperature * 9 / 5 + 32
        elif from_scale == "fahrenheit" and to_scale == "celsius":
            value = (temperature - 32) * 5 / 9
        return ConvertedTemperature(temperature=round(value, 1), scale=to_scale)

    @tool("Climate control")
    def set_thermostat_temperature(
        self, device_id: str, temperature: float, mode: Literal["heat", "cool", "auto"] = "auto"
    ) -> ThermostatReading:
        """Set the temperature a thermostat aims for, in degrees Celsius; this switches it on.

        Args:
            device_id: Identifier of a thermostat.
            temperature: Target temperature in degrees Celsius, between 10 and 30.
            mode: Heat only, cool only, or either as needed.
        """
        device = self._online(device_id, "thermostat")
        if not _MIN_C <= temperature <= _MAX_C:
            raise ToolError("out_of_range", f"{temperature} °C is outside {_MIN_C}-{_MAX_C} °C; convert Fahrenheit to Celsius first")
        device.target_temperature, device.mode, device.status.power = round(temperature, 1), mode, "on"
        return self._reading(device)

    # ------------------------------------------------------------------ automation
    @tool("Scenes and schedules")
    def list_home_scenes(self) -> SceneList:
        """Saved scenes and the devices each one changes."""
        return SceneList(scenes=list(self.scenes.values()))

    @tool("Scenes and schedules")
    def activate_home_scene(self, scene_id: str) -> SceneActivation:
        """Apply a saved scene to its devices at once; offline devices are skipped.

        Args:
            scene_id: Identifier of the scene.
        """
        if scene_id not in self.scenes:
            raise ToolError("unknown_scene", f"no scene with id '{scene_id}'")
        results = []
        for action in self._scene_actions[scene_id]:
            device = self.devices[action.device_id]
            if not device.status.online:
                results.append(SceneDeviceResult(device_id=action.device_id, applied=False))
                continue
            self._set_power(device, action.power)
            if action.brightness_percent is not None:
                device.brightness_percent = action.brightness_percent
            if action.target_temperature is not None:
                device.target_temperature = action.target_temperature
            results.append(SceneDeviceResult(device_id=action.device_id, applied=True))
        return SceneActivation(scene_id=scene_id, results=results)

    @tool("Scenes and schedules")
    def create_device_schedule(self, device_id: str, time: str, power: Literal["on", "off"]) -> DeviceSchedule:
        """Switch a device on or off every day at a time.

        Args:
            device_id: Identifier of the device.
            time: Time of day, HH:MM in 24-hour form, e.g. '22:30'.
            power: 'on' or 'off' at that time.
        """
        self._device(device_id)
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", time.strip())
        if not match:
            raise ToolError("invalid_time", f"'{time}' is not a 24-hour time like '22:30'")
        when = f"{int(match.group(1)):02d}:{match.group(2)}"
        if any(s.device_id == device_id and s.time == when for s in self.schedules.values()):
            raise ToolError("schedule_conflict", f"device '{device_id}' already has a schedule at {when}")
        schedule_id = self.new_id("SH")
        self.schedules[schedule_id] = DeviceSchedule(schedule_id=schedule_id, device_id=device_id, time=when, power=power)
        return self.schedules[schedule_id]

    @tool("Scenes and schedules")
    def list_device_schedules(self, device_id: str | None = None) -> ScheduleList:
        """Daily schedules, of one device or of the whole home.

        Args:
            device_id: Only schedules of this device.
        """
        if device_id is not None:
            self._device(device_id)
        items = [s for s in self.schedules.values() if device_id is None or s.device_id == device_id]
        return ScheduleList(schedules=sorted(items, key=lambda s: s.time))

    @tool("Scenes and schedules")
    def delete_device_schedule(self, schedule_id: str) -> ScheduleDeletion:
        """Delete a daily schedule.

        Args:
            schedule_id: Identifier of the schedule.
        """
        schedule = self.schedules.pop(schedule_id, None)
        if schedule is None:
            raise ToolError("unknown_schedule", f"no schedule with id '{schedule_id}'")
        left = sum(s.device_id == schedule.device_id for s in self.schedules.values())
        return ScheduleDeletion(schedule_id=schedule_id, device_id=schedule.device_id, remaining_schedules=left)

    # ------------------------------------------------------------------ energy
    @tool("Energy monitoring")
    def get_device_energy_usage(self, device_id: str, days: int = 7) -> EnergyUsage:
        """Electricity a device used over the last days and what it cost.

        Args:
            device_id: Identifier of the device.
            days: How many days back to count, 1 to 30.
        """
        device = self._device(device_id)
        if not 1 <= days <= 30:
            raise ToolError("invalid_period", "days must be between 1 and 30")
        kwh = round(sum(device.daily_kwh[-days:]), 3)
        return EnergyUsage(device_id=device_id, days=days, energy_kwh=kwh, estimated_cost=round(kwh * _PRICE_PER_KWH, 2))
