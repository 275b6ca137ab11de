from magnet_lib.pool.envs.smart_home import SmartHomeEnv
from tests.envs_support import ToolRecorder


def _devices(r):
    """Every device of the home with its status, found through rooms as a user would."""
    found = []
    for room in r.ok("list_smart_rooms")["rooms"]:
        listed = r.ok("list_room_devices", room_id=room["room_id"])["devices"]
        assert len(listed) == room["device_count"]
        found += [r.ok("get_device_status", device_id=d["device_id"]) for d in listed]
    return found


def test_thermostat_in_fahrenheit_and_power_gate():
    r = ToolRecorder(SmartHomeEnv(seed=3))
    devices = _devices(r)
    thermostat = next(d for d in devices if d["device_type"] == "thermostat")
    reading = r.ok("get_thermostat_reading", device_id=thermostat["device_id"])
    shown = r.ok("convert_thermostat_temperature", temperature=reading["temperature"], from_scale="celsius", to_scale="fahrenheit")
    assert abs(shown["temperature"] - (reading["temperature"] * 1.8 + 32)) < 0.06 and shown["scale"] == "fahrenheit"
    # the user asks for 72 °F; the thermostat wants Celsius
    r.err("set_thermostat_temperature", "out_of_range", device_id=thermostat["device_id"], temperature=72.0)
    target = r.ok("convert_thermostat_temperature", temperature=72.0, from_scale="fahrenheit", to_scale="celsius")
    assert target["temperature"] == 22.2
    after = r.ok("set_thermostat_temperature", device_id=thermostat["device_id"], temperature=target["temperature"], mode="heat")
    assert (after["target_temperature"], after["mode"]) == (22.2, "heat")
    assert r.ok("get_device_status", device_id=thermostat["device_id"])["power"] == "on"
    r.ok("set_device_power", device_id=thermostat["device_id"], power="off")
    assert r.ok("get_thermostat_reading", device_id=thermostat["device_id"])["mode"] == "off"

    offline = next(d for d in devices if not d["online"])
    r.err("set_device_power", "device_offline", device_id=offline["device_id"], power="on")
    online_plug = next(d for d in devices if d["online"] and d["device_type"] not in ("light", "thermostat"))
    flipped = "off" if online_plug["power"] == "on" else "on"
    assert r.ok("set_device_power", device_id=online_plug["device_id"], power=flipped)["power"] == flipped
    assert r.ok("get_device_status", device_id=online_plug["device_id"])["power"] == flipped
    r.err("get_thermostat_reading", "not_a_thermostat", device_id=online_plug["device_id"])
    r.err("set_light_state", "not_a_light", device_id=online_plug["device_id"], brightness_percent=50)

    light = next(d for d in devices if d["device_type"] == "light" and d["online"])
    state = r.ok("set_light_state", device_id=light["device_id"], brightness_percent=35, color="blue")
    assert state == {"device_id": light["device_id"], "power": "on", "brightness_percent": 35, "color": "blue"}
    assert r.ok("set_light_state", device_id=light["device_id"], brightness_percent=0)["power"] == "off"
    r.err("set_light_state", "out_of_range", device_id=light["device_id"], brightness_percent=150)
    r.err("get_device_status", "unknown_device", device_id="DV-1")
    r.err("list_room_devices", "unknown_room", room_id="RM-1")


def test_scenes_schedules_and_energy():
    env = SmartHomeEnv(seed=3)
    r = ToolRecorder(env)
    scenes = {s["name"]: s for s in r.ok("list_home_scenes")["scenes"]}
    night = r.ok("activate_home_scene", scene_id=scenes["Good Night"]["scene_id"])
    applied = [x["device_id"] for x in night["results"] if x["applied"]]
    skipped = [x["device_id"] for x in night["results"] if not x["applied"]]
    assert set(applied) | set(skipped) == {d["device_id"] for d in scenes["Good Night"]["devices"]}
    assert skipped, "seed 3 has an offline hallway light"
    for device_id in applied:
        status = r.ok("get_device_status", device_id=device_id)
        if status["device_type"] == "light":
            assert status["power"] == "off"
        else:
            assert r.ok("get_thermostat_reading", device_id=device_id)["target_temperature"] == 18.0
    for device_id in skipped:
        assert not r.ok("get_device_status", device_id=device_id)["online"]
    r.err("activate_home_scene", "unknown_scene", scene_id="SC-1")

    plug = next(d for d in env.devices.values() if d.status.device_type == "plug").status.device_id
    before = r.ok("list_device_schedules", device_id=plug)["schedules"]
    created = r.ok("create_device_schedule", device_id=plug, time="22:30", power="off")
    r.err("create_device_schedule", "schedule_conflict", device_id=plug, time="22:30", power="on")
    r.err("create_device_schedule", "invalid_time", device_id=plug, time="half past ten", power="on")
    listed = r.ok("list_device_schedules", device_id=plug)["schedules"]
    assert [s["schedule_id"] for s in listed][-1] == created["schedule_id"] and len(listed) == len(before) + 1
    assert len(r.ok("list_device_schedules")["schedules"]) >= len(listed)
    deleted = r.ok("delete_device_schedule", schedule_id=created["schedule_id"])
    assert deleted["remaining_schedules"] == len(before) and deleted["device_id"] == plug
    assert created["schedule_id"] not in [s["schedule_id"] for s in r.ok("list_device_schedules")["schedules"]]
    r.err("delete_device_schedule", "unknown_schedule", schedule_id=created["schedule_id"])

    week = r.ok("get_device_energy_usage", device_id=plug)
    month = r.ok("get_device_energy_usage", device_id=plug, days=30)
    assert week["days"] == 7 and month["energy_kwh"] > week["energy_kwh"] > 0
    assert abs(month["estimated_cost"] - month["energy_kwh"] * 0.31) < 0.01
    r.err("get_device_energy_usage", "invalid_period", device_id=plug, days=90)


def test_every_tool_in_one_episode():
    r = ToolRecorder(SmartHomeEnv(seed=5))
    devices = _devices(r)
    online = [d for d in devices if d["online"]]
    thermostat = next(d for d in online if d["device_type"] == "thermostat")["device_id"]
    celsius = r.ok("get_thermostat_reading", device_id=thermostat)["target_temperature"]
    fahrenheit = r.ok("convert_thermostat_temperature", temperature=celsius, from_scale="celsius", to_scale="fahrenheit")
    back = r.ok("convert_thermostat_temperature", temperature=fahrenheit["temperature"] + 2, from_scale="fahrenheit", to_scale="celsius")
    r.ok("set_thermostat_temperature", device_id=thermostat, temperature=back["temperature"])
    light = next(d for d in online if d["device_type"] == "light")["device_id"]
    r.ok("set_light_state", device_id=light, brightness_percent=60)
    r.ok("set_device_power", device_id=light, power="off")
    scene = r.ok("list_home_scenes")["scenes"][0]["scene_id"]
    changed = [x["device_id"] for x in r.ok("activate_home_scene", scene_id=scene)["results"] if x["applied"]]
    schedule = r.ok("create_device_schedule", device_id=changed[0], time="6:30", power="on")
    assert schedule["time"] == "06:30"
    r.ok("list_device_schedules", device_id=changed[0])
    r.ok("delete_device_schedule", schedule_id=schedule["schedule_id"])
    r.ok("get_device_energy_usage", device_id=changed[0], days=1)
    r.assert_all_called()
