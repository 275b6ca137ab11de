"""What the worlds tell the planner to leave out: an update to what the thing already is
(a reschedule to the event's own time, permissions set to the mode the file has), and text
written into a photo or a spreadsheet. Read in the default run; each fails on worlds without
these rules (they accepted every value)."""

from magnet_lib.pool.envs.calendar import CalendarEnv
from magnet_lib.pool.envs.files import FilesEnv


def test_a_reschedule_to_the_events_own_time_is_refused():
    env = CalendarEnv(seed=1)
    event_id, event = next(iter(env.events.items()))
    own_start, own_end = (event.start.strftime("%Y-%m-%dT%H:%M"), event.end.strftime("%Y-%m-%dT%H:%M"))
    chosen = {"event_id": event_id}
    assert not env.accepts("reschedule_calendar_event", "start_time", own_start, chosen)
    assert not env.accepts("reschedule_calendar_event", "end_time", own_end, chosen)
    assert env.accepts("reschedule_calendar_event", "start_time", "2031-01-01T09:00", chosen)


def test_permissions_only_change_on_own_files_and_to_another_mode():
    env = FilesEnv(seed=2)
    own = next(f for f in env.files.values() if f.owner == env.username)
    other = next((f for f in env.files.values() if f.owner != env.username), None)
    assert env.accepts("set_file_permissions", "file_path", own.file_path)
    if other is not None:
        assert not env.accepts("set_file_permissions", "file_path", other.file_path)
    chosen = {"file_path": own.file_path}
    assert not env.accepts("set_file_permissions", "mode", own.mode, chosen)
    assert all(env.accepts("set_file_permissions", "mode", m, chosen) for m in ("private", "read_only", "read_write") if m != own.mode)


def test_text_is_written_only_into_text_files():
    env = FilesEnv(seed=2)
    assert not env.accepts("write_file", "file_path", "/photos/beach.jpg")
    assert not env.accepts("write_file", "file_path", "/work/budget.XLSX")
    assert env.accepts("write_file", "file_path", "/work/notes.txt") and env.accepts("write_file", "file_path", "/work/plan.md")


def test_no_distance_or_route_from_a_place_to_itself():
    """Read in the default run: get_distance and plan_route from PL-329447 to PL-329447 (0.0 miles)."""
    from magnet_lib.pool.envs.navigation import NavigationEnv

    env = NavigationEnv(seed=0)
    a, b = list(env.places)[:2]
    for tool in ("get_distance", "plan_route"):
        assert not env.accepts(tool, "destination_place_id", a, {"origin_place_id": a})
        assert env.accepts(tool, "destination_place_id", b, {"origin_place_id": a})
        assert not env.accepts(tool, "origin_place_id", b, {"destination_place_id": b})


def test_no_second_contact_of_the_same_name():
    """Read in the default run: add_new_contact('Daniel Kim', ...) while Daniel Kim was in the address book."""
    from magnet_lib.pool.envs.messaging import MessagingEnv

    env = MessagingEnv(seed=0)
    known = next(iter(env.contacts.values())).contact_name
    assert not env.accepts("add_new_contact", "contact_name", known) and not env.accepts("add_new_contact", "contact_name", known.upper())
    assert env.accepts("add_new_contact", "contact_name", "Zora Newcomer")
