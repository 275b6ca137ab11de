"""Calendar: events, free-slot checks, invitations, reminders and time-zone conversion.

Flows: list_calendar_events / search_calendar_events -> event_id -> get_event_details /
reschedule_calendar_event / delete_calendar_event / set_event_reminder;
find_free_time_slots -> start_time, end_time -> check_time_slot_free (gate) ->
create_calendar_event -> event_id; lookup_calendar_contact -> email -> send_event_invitation
-> invitation_id -> get_invitation_status / revoke_event_invitation; an event's start_time and
a contact's time_zone -> convert_time_zone (nested: "what time is that for Kenji?").
The calendar is kept in the user's zone (America/New_York); the world is the week of 2025-07-07.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

TimeZone = Literal["America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "UTC"]
# UTC offsets in hours during the world's week (July, so daylight-saving time where it applies)
_OFFSET_HOURS = {
    "America/Los_Angeles": -7.0,
    "America/New_York": -4.0,
    "Europe/London": 1.0,
    "Europe/Berlin": 2.0,
    "Asia/Kolkata": 5.5,
    "Asia/Tokyo": 9.0,
    "UTC": 0.0,
}
_HOME_ZONE = "America/New_York"
_WEEK = [date(2025, 7, 7) + timedelta(days=d) for d in range(5)]
_DAY_START, _DAY_END = 9 * 60, 17 * 60  # working hours, minutes after midnight
_TITLES = [
    ("Team standup", "Daily sync of the platform team."),
    ("Design review", "Review of the new onboarding screens."),
    ("1:1 with manager", "Weekly one-on-one."),
    ("Budget planning", "Q3 budget: bring the spreadsheet."),
    ("Customer call", "Quarterly check-in with the customer."),
    ("Dentist appointment", "Routine cleaning."),
    ("Lunch with Maria", "Catch-up lunch."),
    ("Sprint retro", "What went well, what to change."),
    ("Interview", "Backend engineer candidate, second round."),
    ("Yoga class", "Evening class at the studio."),
]
_LOCATIONS = ["Room 4B", "Main office", "Video call", "Cafe Lumen", "Downtown clinic"]
_CONTACTS = [
    ("Maria Rossi", "Europe/Berlin"),
    ("Kenji Watanabe", "Asia/Tokyo"),
    ("Priya Shah", "Asia/Kolkata"),
    ("Sam Carter", "America/Los_Angeles"),
    ("Olivia Brown", "Europe/London"),
    ("Diego Alvarez", "America/New_York"),
]
_FMT = "%Y-%m-%dT%H:%M"


class EventSummary(BaseModel):
    event_id: str = Field(description="Identifier of the event.")
    title: str = Field(description="Title of the event.")
    start_time: str = Field(description="Start, YYYY-MM-DDTHH:MM in the calendar's time zone.")
    end_time: str = Field(description="End, YYYY-MM-DDTHH:MM in the calendar's time zone.")


class EventList(BaseModel):
    """Events, in start order."""

    events: list[EventSummary] = Field(description="Matching events.")


class Attendee(BaseModel):
    email: str = Field(description="Email address of the invitee.")
    response: Literal["pending", "accepted", "declined"] = Field(description="The invitee's answer so far.")


class EventDetails(EventSummary):
    """Full details of one event."""

    location: str = Field(description="Where the event takes place.")
    description: str = Field(description="Notes attached to the event.")
    time_zone: str = Field(description="Time zone of start_time and end_time.")
    attendees: list[Attendee] = Field(description="People invited and their answers (revoked invitations left out).")
    reminders: list[int] = Field(description="Reminders set, as minutes before the start.")


class SlotCheck(BaseModel):
    """Whether a time range is free in the calendar."""

    start_time: str = Field(description="Start of the checked range.")
    end_time: str = Field(description="End of the checked range.")
    is_free: bool = Field(description="True when no event overlaps the range.")
    conflicting_event_ids: list[str] = Field(description="Events overlapping the range.")


class FreeSlot(BaseModel):
    start_time: str = Field(description="Start of the free slot, YYYY-MM-DDTHH:MM.")
    end_time: str = Field(description="End of the free slot, YYYY-MM-DDTHH:MM.")


class FreeSlots(BaseModel):
    """Free slots of the requested length within working hours (09:00-17:00)."""

    date: str = Field(description="The day searched, YYYY-MM-DD.")
    slots: list[FreeSlot] = Field(description="Free slots, earliest first.")


class EventChange(BaseModel):
    """The outcome of creating, moving or deleting an event."""

    event_id: str = Field(description="Identifier of the event.")
    title: str = Field(description="Title of the event.")
    start_time: str = Field(description="Start of the event.")
    end_time: str = Field(description="End of the event.")
    status: Literal["created", "rescheduled", "deleted"] = Field(description="What happened to the event.")


class Contact(BaseModel):
    """A contact found in the address book."""

    name: str = Field(description="Full name of the contact.")
    email: str = Field(description="Email address of the contact.")
    time_zone: TimeZone = Field(description="Time zone the contact lives in.")


class Invitation(BaseModel):
    """An invitation to an event."""

    invitation_id: str = Field(description="Identifier of the invitation.")
    event_id: str = Field(description="Event the invitation is for.")
    email: str = Field(description="Address the invitation was sent to.")
    status: Literal["pending", "accepted", "declined", "revoked", "event_deleted"] = Field(description="State of the invitation.")


class Reminder(BaseModel):
    """A reminder set on an event."""

    reminder_id: str = Field(description="Identifier of the reminder.")
    event_id: str = Field(description="Event the reminder belongs to.")
    minutes_before: int = Field(description="How long before the start it fires.")
    remind_at: str = Field(description="When it fires, YYYY-MM-DDTHH:MM in the calendar's time zone.")


class ConvertedTime(BaseModel):
    """A date-time expressed in another time zone."""

    start_time: str = Field(description="The converted date-time, YYYY-MM-DDTHH:MM.")
    time_zone: str = Field(description="Time zone of the converted date-time.")
    utc_offset_hours: float = Field(description="Offset of that zone from UTC, in hours.")


class _Event(BaseModel):
    event_id: str
    title: str
    start: datetime
    end: datetime
    location: str
    description: str
    reminders: list[int] = []


class _Invitation(BaseModel):
    invitation_id: str
    event_id: str
    email: str
    answer: Literal["pending", "accepted", "declined"]
    revoked: bool = False


def _parse(value: str, what: str) -> datetime:
    try:
        return datetime.strptime(value, _FMT)
    except ValueError:
        raise ToolError("invalid_time", f"{what} '{value}' is not a date-time in YYYY-MM-DDTHH:MM form") from None


def _range(start_time: str, end_time: str) -> tuple[datetime, datetime]:
    start, end = _parse(start_time, "start time"), _parse(end_time, "end time")
    if end <= start:
        raise ToolError("invalid_time_range", f"end {end_time} is not after start {start_time}")
    return start, end


class CalendarEnv(ToolEnvironment):
    category = "calendar"
    description = "A personal calendar: events, free time, invitations, reminders and time zones."

    def setup(self) -> None:
        rng = self.rng
        self.events: dict[str, _Event] = {}
        for day in _WEEK:
            minute = _DAY_START + rng.choice((0, 30, 60))
            for _ in range(rng.randrange(1, 4)):
                length = rng.choice((30, 45, 60, 90))
                if minute + length > _DAY_END:
                    break
                title, notes = rng.choice(_TITLES)
                start = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
                eid = self.new_id("EV")
                self.events[eid] = _Event(
                    event_id=eid,
                    title=title,
                    start=start,
                    end=start + timedelta(minutes=length),
                    location=rng.choice(_LOCATIONS),
                    description=notes,
                )
                minute += length + rng.choice((30, 60, 120))
        self.contacts = [
            Contact(name=name, email=name.lower().replace(" ", ".") + "@example.com", time_zone=zone) for name, zone in _CONTACTS
        ]
        self.invitations: dict[str, _Invitation] = {}
        self.reminders: dict[str, Reminder] = {}

    def user_values(self) -> dict[str, list]:
        titles = sorted({e.title for e in self.events.values()})
        return {
            "date": [d.isoformat() for d in _WEEK],
            "query": sorted({t.split()[0].lower() for t in titles}),
            "title": ["Project kickoff", "Coffee with Sam", "Quarterly review"],
            "contact_name": [c.name.split()[0] for c in self.contacts],
            "duration_minutes": [30, 45, 60],
            "minutes_before": [10, 15, 30, 60],
            "start_time": ["2025-07-08T15:00", "2025-07-10T11:30"],
            "end_time": ["2025-07-08T16:00", "2025-07-10T12:00"],
            "email": [c.email for c in self.contacts],
        }

    # ------------------------------------------------------------------ helpers
    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """A move to another time: never to the start or end the event already has."""
        if tool == "reschedule_calendar_event" and param in ("start_time", "end_time") and chosen and chosen.get("event_id") in self.events:
            e = self.events[chosen["event_id"]]
            return value != (e.start if param == "start_time" else e.end).strftime(_FMT)
        return True

    def _event(self, event_id: str) -> _Event:
        return self.lookup(self.events, event_id, "unknown_event", f"no event with id '{event_id}'")

    def _conflicts(self, start: datetime, end: datetime, ignore: str | None = None) -> list[str]:
        return [e.event_id for e in self._ordered() if e.event_id != ignore and e.start < end and start < e.end]

    def _ordered(self) -> list[_Event]:
        return sorted(self.events.values(), key=lambda e: e.start)

    @staticmethod
    def _summary(e: _Event) -> dict:
        return dict(event_id=e.event_id, title=e.title, start_time=e.start.strftime(_FMT), end_time=e.end.strftime(_FMT))

    def _invitation(self, invitation_id: str) -> _Invitation:
        return self.lookup(self.invitations, invitation_id, "unknown_invitation", f"no invitation with id '{invitation_id}'")

    def _invitation_view(self, inv: _Invitation) -> Invitation:
        status = "revoked" if inv.revoked else "event_deleted" if inv.event_id not in self.events else inv.answer
        return Invitation(invitation_id=inv.invitation_id, event_id=inv.event_id, email=inv.email, status=status)

    def _guard_free(self, start: datetime, end: datetime, allow_overlap: bool, ignore: str | None = None) -> None:
        clash = self._conflicts(start, end, ignore)
        if clash and not allow_overlap:
            raise ToolError("time_conflict", f"the time overlaps {', '.join(clash)}; pick a free slot or allow the overlap")

    # ------------------------------------------------------------------ events
    @tool("Event management")
    def list_calendar_events(self, date: str) -> EventList:
        """List the events of one day.

        Args:
            date: The day, YYYY-MM-DD.
        """
        _parse(f"{date}T00:00", "date")
        return EventList(events=[EventSummary(**self._summary(e)) for e in self._ordered() if e.start.date().isoformat() == date])

    @tool("Event management")
    def search_calendar_events(self, query: str) -> EventList:
        """Find events whose title or notes contain the given words.

        Args:
            query: Words to look for, e.g. 'standup' or 'budget'.
        """
        words = query.lower().split()
        hits = [e for e in self._ordered() if words and all(w in f"{e.title} {e.description}".lower() for w in words)]
        return EventList(events=[EventSummary(**self._summary(e)) for e in hits])

    @tool("Event management")
    def get_event_details(self, event_id: str) -> EventDetails:
        """Full details of an event: place, notes, attendees with their answers, reminders.

        Args:
            event_id: Identifier of the event.
        """
        e = self._event(event_id)
        attendees = [
            Attendee(email=i.email, response=i.answer) for i in self.invitations.values() if i.event_id == event_id and not i.revoked
        ]
        return EventDetails(
            **self._summary(e),
            location=e.location,
            description=e.description,
            time_zone=_HOME_ZONE,
            attendees=attendees,
            reminders=sorted(e.reminders),
        )

    @tool("Event management")
    def create_calendar_event(
        self, title: str, start_time: str, end_time: str, location: str = "", description: str = "", allow_overlap: bool = False
    ) -> EventChange:
        """Add an event to the calendar; refuses to double-book unless the overlap is allowed.

        Args:
            title: Title of the event.
            start_time: Start, YYYY-MM-DDTHH:MM in the calendar's time zone.
            end_time: End, YYYY-MM-DDTHH:MM in the calendar's time zone.
            location: Where it takes place.
            description: Notes for the event.
            allow_overlap: Create it even when it overlaps other events.
        """
        start, end = _range(start_time, end_time)
        self._guard_free(start, end, allow_overlap)
        eid = self.new_id("EV")
        self.events[eid] = _Event(event_id=eid, title=title, start=start, end=end, location=location, description=description)
        return EventChange(**self._summary(self.events[eid]), status="created")

    @tool("Event management")
    def reschedule_calendar_event(self, event_id: str, start_time: str, end_time: str, allow_overlap: bool = False) -> EventChange:
        """Move an event to a new time; reminders move with it.

        Args:
            event_id: Identifier of the event to move.
            start_time: New start, YYYY-MM-DDTHH:MM.
            end_time: New end, YYYY-MM-DDTHH:MM.
            allow_overlap: Move it even when the new time overlaps other events.
        """
        e = self._event(event_id)
        start, end = _range(start_time, end_time)
        self._guard_free(start, end, allow_overlap, ignore=event_id)
        e.start, e.end = start, end
        for r in self.reminders.values():
            if r.event_id == event_id:
                r.remind_at = (start - timedelta(minutes=r.minutes_before)).strftime(_FMT)
        return EventChange(**self._summary(e), status="rescheduled")

    @tool("Event management")
    def delete_calendar_event(self, event_id: str) -> EventChange:
        """Delete an event, with its reminders; its invitations become void.

        Args:
            event_id: Identifier of the event to delete.
        """
        e = self.events.pop(self._event(event_id).event_id)
        self.reminders = {k: r for k, r in self.reminders.items() if r.event_id != event_id}
        return EventChange(**self._summary(e), status="deleted")

    # ------------------------------------------------------------------ scheduling
    @tool("Scheduling")
    def check_time_slot_free(self, start_time: str, end_time: str) -> SlotCheck:
        """Check whether a time range is free before booking something in it.

        Args:
            start_time: Start of the range, YYYY-MM-DDTHH:MM.
            end_time: End of the range, YYYY-MM-DDTHH:MM.
        """
        clash = self._conflicts(*_range(start_time, end_time))
        return SlotCheck(start_time=start_time, end_time=end_time, is_free=not clash, conflicting_event_ids=clash)

    @tool("Scheduling")
    def find_free_time_slots(self, date: str, duration_minutes: int) -> FreeSlots:
        """Find free slots of a given length on a day, within working hours, on the half hour.

        Args:
            date: The day, YYYY-MM-DD.
            duration_minutes: How long the slot must be, in minutes.
        """
        day = _parse(f"{date}T00:00", "date")
        if not 0 < duration_minutes <= _DAY_END - _DAY_START:
            raise ToolError("invalid_duration", f"duration must be between 1 and {_DAY_END - _DAY_START} minutes")
        slots = []
        for minute in range(_DAY_START, _DAY_END - duration_minutes + 1, 30):
            start = day + timedelta(minutes=minute)
            end = start + timedelta(minutes=duration_minutes)
            if not self._conflicts(start, end):
                slots.append(FreeSlot(start_time=start.strftime(_FMT), end_time=end.strftime(_FMT)))
        return FreeSlots(date=date, slots=slots)

    @tool("Scheduling")
    def convert_time_zone(self, start_time: str, time_zone: TimeZone, from_time_zone: TimeZone = _HOME_ZONE) -> ConvertedTime:
        """Convert a date-time, such as an event's start, from one time zone to another.

        Args:
            start_time: The date-time to convert, YYYY-MM-DDTHH:MM.
            time_zone: Time zone to express it in, e.g. a contact's zone.
            from_time_zone: Time zone the given date-time is in; defaults to the calendar's zone.
        """
        moment = _parse(start_time, "time")
        shifted = moment + timedelta(hours=_OFFSET_HOURS[time_zone] - _OFFSET_HOURS[from_time_zone])
        return ConvertedTime(start_time=shifted.strftime(_FMT), time_zone=time_zone, utc_offset_hours=_OFFSET_HOURS[time_zone])

    # ------------------------------------------------------------------ invitations
    @tool("Invitations")
    def lookup_calendar_contact(self, contact_name: str) -> Contact:
        """Find a contact by (part of) their name to get their email address and time zone.

        Args:
            contact_name: Name of the person, e.g. 'Maria'.
        """
        text = contact_name.strip().lower()
        for c in self.contacts:
            if text and text in c.name.lower():
                return c
        raise ToolError("unknown_contact", f"no contact named '{contact_name}'")

    @tool("Invitations")
    def send_event_invitation(self, event_id: str, email: str, message: str = "") -> Invitation:
        """Invite someone to an event by email.

        Args:
            event_id: Identifier of the event.
            email: Email address of the person to invite.
            message: Personal note sent with the invitation.
        """
        self._event(event_id)
        if "@" not in email:
            raise ToolError("invalid_email", f"'{email}' is not an email address")
        if any(i.event_id == event_id and i.email == email and not i.revoked for i in self.invitations.values()):
            raise ToolError("already_invited", f"{email} is already invited to '{event_id}'")
        known = any(c.email == email for c in self.contacts)
        answer = self.rng.choice(("accepted", "accepted", "declined")) if known else "pending"
        inv = _Invitation(invitation_id=self.new_id("INV"), event_id=event_id, email=email, answer=answer)
        self.invitations[inv.invitation_id] = inv
        return Invitation(invitation_id=inv.invitation_id, event_id=event_id, email=email, status="pending")

    @tool("Invitations")
    def get_invitation_status(self, invitation_id: str) -> Invitation:
        """Whether an invitee has accepted or declined.

        Args:
            invitation_id: Identifier of an invitation returned by send_event_invitation.
        """
        return self._invitation_view(self._invitation(invitation_id))

    @tool("Invitations")
    def revoke_event_invitation(self, invitation_id: str) -> Invitation:
        """Withdraw an invitation; the person is removed from the event's attendees.

        Args:
            invitation_id: Identifier of the invitation to withdraw.
        """
        inv = self._invitation(invitation_id)
        if inv.revoked or inv.event_id not in self.events:
            raise ToolError("invitation_inactive", f"invitation '{invitation_id}' is {self._invitation_view(inv).status}")
        inv.revoked = True
        return self._invitation_view(inv)

    # ------------------------------------------------------------------ reminders
    @tool("Reminders")
    def set_event_reminder(self, event_id: str, minutes_before: int) -> Reminder:
        """Set a reminder that fires some minutes before an event starts.

        Args:
            event_id: Identifier of the event.
            minutes_before: How many minutes before the start to remind, e.g. 15.
        """
        e = self._event(event_id)
        if not 0 <= minutes_before <= 7 * 24 * 60:
            raise ToolError("invalid_reminder", "a reminder fires between 0 minutes and one week before the event")
        if minutes_before in e.reminders:
            raise ToolError("duplicate_reminder", f"a reminder {minutes_before} minutes before is already set")
        e.reminders.append(minutes_before)
        reminder = Reminder(
            reminder_id=self.new_id("RM"),
            event_id=event_id,
            minutes_before=minutes_before,
            remind_at=(e.start - timedelta(minutes=minutes_before)).strftime(_FMT),
        )
        self.reminders[reminder.reminder_id] = reminder
        return reminder
