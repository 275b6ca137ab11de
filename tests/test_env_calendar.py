import pytest

from magnet_lib.pool.envs.calendar import CalendarEnv
from tests.envs_support import ToolRecorder


def event_flow(r: ToolRecorder) -> None:
    day = "2025-07-08"
    existing = r.ok("list_calendar_events", date=day)["events"]
    assert existing and all(e["start_time"].startswith(day) for e in existing)
    busy = existing[0]
    clash = r.ok("check_time_slot_free", start_time=busy["start_time"], end_time=busy["end_time"])
    assert not clash["is_free"] and busy["event_id"] in clash["conflicting_event_ids"]
    r.err("create_calendar_event", "time_conflict", title="Overlap", start_time=busy["start_time"], end_time=busy["end_time"])

    # find a free hour, confirm it is free, book it
    slot = r.ok("find_free_time_slots", date=day, duration_minutes=60)["slots"][0]
    assert r.ok("check_time_slot_free", start_time=slot["start_time"], end_time=slot["end_time"])["is_free"]
    created = r.ok(
        "create_calendar_event", title="Project kickoff", start_time=slot["start_time"], end_time=slot["end_time"], location="Room 4B"
    )
    assert created["status"] == "created"
    assert created["event_id"] in [e["event_id"] for e in r.ok("list_calendar_events", date=day)["events"]]
    assert not r.ok("check_time_slot_free", start_time=slot["start_time"], end_time=slot["end_time"])["is_free"]
    assert slot not in r.ok("find_free_time_slots", date=day, duration_minutes=60)["slots"]
    found = r.ok("search_calendar_events", query="kickoff")["events"]
    assert [e["event_id"] for e in found] == [created["event_id"]]

    reminder = r.ok("set_event_reminder", event_id=created["event_id"], minutes_before=15)
    r.err("set_event_reminder", "duplicate_reminder", event_id=created["event_id"], minutes_before=15)
    later = r.ok("find_free_time_slots", date="2025-07-10", duration_minutes=60)["slots"][-1]
    moved = r.ok("reschedule_calendar_event", event_id=created["event_id"], start_time=later["start_time"], end_time=later["end_time"])
    assert moved["status"] == "rescheduled" and moved["start_time"] == later["start_time"]
    assert r.env.reminders[reminder["reminder_id"]].remind_at < later["start_time"]
    assert r.env.reminders[reminder["reminder_id"]].remind_at.startswith("2025-07-10")
    details = r.ok("get_event_details", event_id=created["event_id"])
    assert details["reminders"] == [15] and details["location"] == "Room 4B" and details["time_zone"] == "America/New_York"

    other = r.ok("list_calendar_events", date="2025-07-10")["events"]
    blocker = next(e for e in other if e["event_id"] != created["event_id"])
    r.err(
        "reschedule_calendar_event",
        "time_conflict",
        event_id=created["event_id"],
        start_time=blocker["start_time"],
        end_time=blocker["end_time"],
    )
    r.err("create_calendar_event", "invalid_time_range", title="Backwards", start_time="2025-07-09T12:00", end_time="2025-07-09T11:00")
    r.err("check_time_slot_free", "invalid_time", start_time="tomorrow", end_time="2025-07-09T11:00")
    r.err("find_free_time_slots", "invalid_duration", date=day, duration_minutes=0)
    r.err("get_event_details", "unknown_event", event_id="EV-1")


def invitation_flow(r: ToolRecorder) -> None:
    meeting = r.ok("search_calendar_events", query="kickoff")["events"][0]
    kenji = r.ok("lookup_calendar_contact", contact_name="Kenji")
    assert kenji["time_zone"] == "Asia/Tokyo"
    invite = r.ok("send_event_invitation", event_id=meeting["event_id"], email=kenji["email"], message="Agenda attached")
    assert invite["status"] == "pending"
    r.err("send_event_invitation", "already_invited", event_id=meeting["event_id"], email=kenji["email"])
    answer = r.ok("get_invitation_status", invitation_id=invite["invitation_id"])["status"]
    assert answer in ("accepted", "declined")
    attendees = r.ok("get_event_details", event_id=meeting["event_id"])["attendees"]
    assert attendees == [{"email": kenji["email"], "response": answer}]

    # nested: "what time is that for Kenji?" -> his zone from the contact, the start from the event
    there = r.ok("convert_time_zone", start_time=meeting["start_time"], time_zone=kenji["time_zone"])
    assert there["utc_offset_hours"] == 9.0
    back = r.ok("convert_time_zone", start_time=there["start_time"], time_zone="America/New_York", from_time_zone="Asia/Tokyo")
    assert back["start_time"] == meeting["start_time"]

    revoked = r.ok("revoke_event_invitation", invitation_id=invite["invitation_id"])
    assert revoked["status"] == "revoked"
    assert r.ok("get_event_details", event_id=meeting["event_id"])["attendees"] == []
    r.err("revoke_event_invitation", "invitation_inactive", invitation_id=invite["invitation_id"])

    maria = r.ok("lookup_calendar_contact", contact_name="maria rossi")
    second = r.ok("send_event_invitation", event_id=meeting["event_id"], email=maria["email"])
    deleted = r.ok("delete_calendar_event", event_id=meeting["event_id"])
    assert deleted["status"] == "deleted"
    assert r.ok("search_calendar_events", query="kickoff")["events"] == []
    assert r.ok("get_invitation_status", invitation_id=second["invitation_id"])["status"] == "event_deleted"
    assert not any(rem.event_id == meeting["event_id"] for rem in r.env.reminders.values())
    r.err("delete_calendar_event", "unknown_event", event_id=meeting["event_id"])
    r.err("lookup_calendar_contact", "unknown_contact", contact_name="Nobody")
    r.err("get_invitation_status", "unknown_invitation", invitation_id="INV-1")
    r.err("send_event_invitation", "unknown_event", event_id="EV-1", email=maria["email"])


@pytest.mark.parametrize("seed", [0, 4, 12])
def test_calendar_flows(seed):
    r = ToolRecorder(CalendarEnv(seed=seed))
    event_flow(r)
    invitation_flow(r)
    r.assert_all_called()
