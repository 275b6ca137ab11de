"""Healthcare: doctors, appointment scheduling, prescriptions, refills and insurance coverage.

Flows: search_doctors -> doctor_id -> get_doctor_profile / get_doctor_availability (gate) -> slot_id
-> book_doctor_appointment -> appointment_id -> get_appointment_details /
reschedule_doctor_appointment (a new slot_id of the same doctor) / cancel_doctor_appointment;
list_my_appointments -> appointment_id; list_prescriptions -> prescription_id ->
get_prescription_details (medication_name, doctor_id) -> check_insurance_coverage (gate) ->
request_prescription_refill (with a pharmacy_id from search_pharmacies) -> refill_id -> get_refill_status.

The patient has one insurance plan; a medication it does not cover cannot be refilled here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

_SPECIALTIES = ["cardiology", "dermatology", "pediatrics", "family medicine", "orthopedics", "neurology"]
_CITIES = ["Boston", "Cambridge", "Somerville"]
_FIRST = ["Amara", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonah", "Keiko", "Leo"]
_LAST = ["Okafor", "Lindqvist", "Moreau", "Petrov", "Santos", "Whitfield", "Nakamura", "Haddad", "Brennan", "Cole"]
_TIMES = ["08:30", "09:00", "09:30", "10:30", "11:00", "13:30", "14:00", "15:00", "16:30"]
_FIRST_DAY = dt.date(2026, 3, 2)  # a Monday; the bookable week is the 5 working days from here
# medication -> (dosage, days of supply, covered by the plan, copay in USD, needs prior authorization)
_FORMULARY = {
    "Atorvastatin": ("20 mg daily", 30, True, 5.0, False),
    "Lisinopril": ("10 mg daily", 30, True, 3.0, False),
    "Metformin": ("500 mg twice daily", 30, True, 4.0, False),
    "Sertraline": ("50 mg daily", 30, True, 10.0, False),
    "Adalimumab": ("40 mg every two weeks", 28, True, 120.0, True),
    "Isotretinoin": ("40 mg daily", 30, False, 0.0, False),
    "Albuterol": ("2 puffs as needed", 60, True, 15.0, False),
    "Zolpidem": ("5 mg at bedtime", 30, False, 0.0, False),
}


class DoctorSummary(BaseModel):
    doctor_id: str = Field(description="Identifier of the doctor.")
    name: str = Field(description="The doctor's name.")
    specialty: str = Field(description="Medical specialty.")
    city: str = Field(description="City of the doctor's clinic.")


class DoctorList(BaseModel):
    """Doctors matching the search."""

    doctors: list[DoctorSummary] = Field(description="Matching doctors.")


class DoctorProfile(BaseModel):
    """Details of one doctor."""

    doctor_id: str = Field(description="Identifier of the doctor.")
    name: str = Field(description="The doctor's name.")
    specialty: str = Field(description="Medical specialty.")
    clinic: str = Field(description="Clinic where the doctor sees patients.")
    city: str = Field(description="City of the clinic.")
    years_experience: int = Field(description="Years in practice.")
    in_network: bool = Field(description="Whether the doctor is in the patient's insurance network.")
    accepting_new_patients: bool = Field(description="Whether the doctor takes new patients.")


class Slot(BaseModel):
    slot_id: str = Field(description="Identifier of the free appointment slot.")
    start_time: str = Field(description="Start time, HH:MM, 30 minutes long.")


class DoctorAvailability(BaseModel):
    """Free appointment slots of a doctor on one day."""

    doctor_id: str = Field(description="Identifier of the doctor.")
    date: str = Field(description="The day, YYYY-MM-DD.")
    slots: list[Slot] = Field(description="Free slots that day; empty when the doctor is fully booked or away.")


class Appointment(BaseModel):
    """A doctor's appointment of the patient."""

    appointment_id: str = Field(description="Identifier of the appointment.")
    doctor_id: str = Field(description="Doctor the appointment is with.")
    doctor_name: str = Field(description="The doctor's name.")
    clinic: str = Field(description="Where the appointment takes place.")
    date: str = Field(description="Day of the appointment, YYYY-MM-DD.")
    start_time: str = Field(description="Start time, HH:MM.")
    reason: str = Field(description="Why the patient is seeing the doctor.")
    status: Literal["scheduled", "cancelled"] = Field(description="Whether the appointment still stands.")


class AppointmentList(BaseModel):
    """The patient's appointments."""

    appointments: list[Appointment] = Field(description="Appointments in date order.")


class PrescriptionSummary(BaseModel):
    prescription_id: str = Field(description="Identifier of the prescription.")
    medication_name: str = Field(description="Name of the prescribed medication.")
    refills_remaining: int = Field(description="Refills still allowed.")


class PrescriptionList(BaseModel):
    """The patient's active prescriptions."""

    prescriptions: list[PrescriptionSummary] = Field(description="Active prescriptions.")


class PrescriptionDetails(BaseModel):
    """Everything about one prescription."""

    prescription_id: str = Field(description="Identifier of the prescription.")
    medication_name: str = Field(description="Name of the prescribed medication.")
    dosage: str = Field(description="How much to take and how often.")
    days_supply: int = Field(description="Days one fill lasts.")
    refills_remaining: int = Field(description="Refills still allowed.")
    doctor_id: str = Field(description="Doctor who prescribed it.")
    last_filled: str = Field(description="Day of the last fill, YYYY-MM-DD.")


class CoverageCheck(BaseModel):
    """What the patient's insurance pays for a medication."""

    medication_name: str = Field(description="Name of the medication.")
    covered: bool = Field(description="Whether the plan covers the medication.")
    copay: float = Field(description="What the patient pays per fill, in USD; 0 when not covered.")
    requires_prior_authorization: bool = Field(description="Whether the doctor must get approval first.")


class Pharmacy(BaseModel):
    pharmacy_id: str = Field(description="Identifier of the pharmacy.")
    name: str = Field(description="Name of the pharmacy.")
    city: str = Field(description="City of the pharmacy.")
    open_24_hours: bool = Field(description="Whether it never closes.")


class PharmacyList(BaseModel):
    """Pharmacies in a city."""

    pharmacies: list[Pharmacy] = Field(description="Pharmacies found.")


class Refill(BaseModel):
    """A refill request and its progress."""

    refill_id: str = Field(description="Identifier of the refill request.")
    prescription_id: str = Field(description="Prescription being refilled.")
    pharmacy_id: str = Field(description="Pharmacy filling it.")
    status: Literal["processing", "ready_for_pickup"] = Field(description="Progress of the refill.")
    copay: float = Field(description="Amount due at pickup, in USD.")


class _Doctor(BaseModel):
    profile: DoctorProfile
    slots: dict[str, tuple[str, str]]  # slot_id -> (date, start_time)


class _Prescription(BaseModel):
    details: PrescriptionDetails


class HealthcareEnv(ToolEnvironment):
    category = "healthcare"
    description = "Finding doctors, booking appointments, managing prescriptions, refills and insurance coverage."

    def setup(self) -> None:
        rng = self.rng
        days = [(_FIRST_DAY + dt.timedelta(days=d)).isoformat() for d in range(5)]
        self.dates = days
        names = rng.sample([f"Dr. {f} {l}" for f in _FIRST for l in _LAST], 12)
        self.doctors: dict[str, _Doctor] = {}
        for i, name in enumerate(names):
            doctor_id = self.new_id("DR")
            city = _CITIES[i % len(_CITIES)]
            slots = {}
            for day in rng.sample(days, 3):
                for start in sorted(rng.sample(_TIMES, rng.randint(1, 3))):
                    slots[self.new_id("SL")] = (day, start)
            self.doctors[doctor_id] = _Doctor(
                profile=DoctorProfile(
                    doctor_id=doctor_id,
                    name=name,
                    specialty=_SPECIALTIES[i % len(_SPECIALTIES)],
                    clinic=f"{rng.choice(['Riverside', 'Beacon', 'Harborview', 'Elm Street'])} Clinic",
                    city=city,
                    years_experience=rng.randint(3, 35),
                    in_network=rng.random() < 0.75,
                    accepting_new_patients=rng.random() < 0.85,
                ),
                slots=slots,
            )
        self.booked_slots: dict[str, str] = {}  # slot_id -> appointment_id
        self.appointments: dict[str, Appointment] = {}
        # two appointments the patient made before, with two doctors: something to reschedule or cancel
        for doctor_id, reason in zip(rng.sample(sorted(self.doctors), 2), ("annual check-up", "follow-up on blood pressure")):
            doctor = self.doctors[doctor_id]
            self._book(doctor, rng.choice(sorted(doctor.slots)), reason)

        self.prescriptions: dict[str, _Prescription] = {}
        for k, medication in enumerate(rng.sample(sorted(_FORMULARY), 4)):
            dosage, supply, *_ = _FORMULARY[medication]
            pid = self.new_id("RX")
            self.prescriptions[pid] = _Prescription(
                details=PrescriptionDetails(
                    prescription_id=pid,
                    medication_name=medication,
                    dosage=dosage,
                    days_supply=supply,
                    refills_remaining=0 if k == 3 else rng.randint(1, 5),
                    doctor_id=rng.choice(sorted(self.doctors)),
                    last_filled=(_FIRST_DAY - dt.timedelta(days=rng.randint(10, 40))).isoformat(),
                )
            )
        self.pharmacies: dict[str, Pharmacy] = {}
        for city in _CITIES:
            for chain in rng.sample(["CareWell Pharmacy", "Corner Drug", "MedPoint", "GreenCross Pharmacy"], 2):
                ph = self.new_id("PH")
                self.pharmacies[ph] = Pharmacy(pharmacy_id=ph, name=f"{chain} {city}", city=city, open_24_hours=rng.random() < 0.3)
        self.refills: dict[str, Refill] = {}

    def user_values(self) -> dict[str, list]:
        return {
            "specialty": list(_SPECIALTIES),
            "city": list(_CITIES),
            "date": list(self.dates),
            "reason": ["persistent headaches", "skin rash", "knee pain after running", "follow-up on blood pressure"],
            "medication_name": sorted(_FORMULARY),
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """A free slot to book; to reschedule, a scheduled appointment and a free slot of its own
        doctor (before the appointment is chosen: of a doctor the patient has one with)."""
        if tool in ("reschedule_doctor_appointment", "cancel_doctor_appointment") and param == "appointment_id":
            return value in self.appointments and self.appointments[value].status == "scheduled"
        if param != "slot_id" or tool not in ("book_doctor_appointment", "reschedule_doctor_appointment"):
            return True
        if value in self.booked_slots or not any(value in d.slots for d in self.doctors.values()):
            return False
        if tool == "book_doctor_appointment":
            return True
        appointment = self.appointments.get((chosen or {}).get("appointment_id"))
        doctors = (
            [appointment.doctor_id]
            if appointment is not None
            else [a.doctor_id for a in self.appointments.values() if a.status == "scheduled"]
        )
        return any(d in self.doctors and value in self.doctors[d].slots for d in doctors)

    # ------------------------------------------------------------------ helpers
    def _doctor(self, doctor_id: str) -> _Doctor:
        return self.lookup(self.doctors, doctor_id, "unknown_doctor", f"no doctor with id '{doctor_id}'")

    def _slot_owner(self, slot_id: str) -> _Doctor:
        for doctor in self.doctors.values():
            if slot_id in doctor.slots:
                return doctor
        raise ToolError("unknown_slot", f"no appointment slot with id '{slot_id}'")

    def _appointment(self, appointment_id: str) -> Appointment:
        return self.lookup(self.appointments, appointment_id, "unknown_appointment", f"no appointment with id '{appointment_id}'")

    def _prescription(self, prescription_id: str) -> PrescriptionDetails:
        if prescription_id not in self.prescriptions:
            raise ToolError("unknown_prescription", f"no prescription with id '{prescription_id}'")
        return self.prescriptions[prescription_id].details

    def _book(self, doctor: _Doctor, slot_id: str, reason: str) -> Appointment:
        day, start = doctor.slots[slot_id]
        appointment_id = self.new_id("AP")
        p = doctor.profile
        self.appointments[appointment_id] = Appointment(
            appointment_id=appointment_id,
            doctor_id=p.doctor_id,
            doctor_name=p.name,
            clinic=f"{p.clinic}, {p.city}",
            date=day,
            start_time=start,
            reason=reason,
            status="scheduled",
        )
        self.booked_slots[slot_id] = appointment_id
        return self.appointments[appointment_id]

    def _free_slot_of(self, appointment_id: str) -> None:
        for slot_id, owner in list(self.booked_slots.items()):
            if owner == appointment_id:
                del self.booked_slots[slot_id]

    # ------------------------------------------------------------------ doctors
    @tool("Doctor search")
    def search_doctors(self, specialty: str, city: str | None = None) -> DoctorList:
        """Find doctors of a medical specialty, optionally in one city.

        Args:
            specialty: Medical specialty, e.g. 'dermatology'.
            city: Only doctors whose clinic is in this city.
        """
        hits = [
            DoctorSummary(doctor_id=d.profile.doctor_id, name=d.profile.name, specialty=d.profile.specialty, city=d.profile.city)
            for d in self.doctors.values()
            if specialty.lower() in d.profile.specialty and (city is None or d.profile.city.lower() == city.lower())
        ]
        return DoctorList(doctors=hits)

    @tool("Doctor search")
    def get_doctor_profile(self, doctor_id: str) -> DoctorProfile:
        """A doctor's clinic, experience, insurance network status and whether they take new patients.

        Args:
            doctor_id: Identifier of the doctor.
        """
        return self._doctor(doctor_id).profile

    # ------------------------------------------------------------------ appointments
    @tool("Appointment scheduling")
    def get_doctor_availability(self, doctor_id: str, date: str) -> DoctorAvailability:
        """Free appointment slots of a doctor on a given day.

        Args:
            doctor_id: Identifier of the doctor.
            date: The day, YYYY-MM-DD.
        """
        doctor = self._doctor(doctor_id)
        try:
            day = dt.date.fromisoformat(date).isoformat()
        except ValueError:
            raise ToolError("invalid_date", f"'{date}' is not a date in YYYY-MM-DD form") from None
        slots = [
            Slot(slot_id=sid, start_time=start) for sid, (d, start) in doctor.slots.items() if d == day and sid not in self.booked_slots
        ]
        return DoctorAvailability(doctor_id=doctor_id, date=day, slots=sorted(slots, key=lambda s: s.start_time))

    @tool("Appointment scheduling")
    def book_doctor_appointment(self, slot_id: str, reason: str) -> Appointment:
        """Book a free slot with a doctor.

        Args:
            slot_id: Identifier of a free slot, from the doctor's availability.
            reason: Why the patient wants to see the doctor, in a few words.
        """
        doctor = self._slot_owner(slot_id)
        if slot_id in self.booked_slots:
            raise ToolError("slot_unavailable", f"slot '{slot_id}' is already booked; check availability again")
        seen_before = any(a.doctor_id == doctor.profile.doctor_id for a in self.appointments.values())
        if not doctor.profile.accepting_new_patients and not seen_before:
            raise ToolError("not_accepting_patients", f"{doctor.profile.name} does not take new patients")
        return self._book(doctor, slot_id, reason)

    @tool("Appointment scheduling")
    def get_appointment_details(self, appointment_id: str) -> Appointment:
        """Doctor, place, time, reason and status of an appointment.

        Args:
            appointment_id: Identifier of the appointment.
        """
        return self._appointment(appointment_id)

    @tool("Appointment scheduling")
    def list_my_appointments(self, include_cancelled: bool = False) -> AppointmentList:
        """The patient's appointments in date order.

        Args:
            include_cancelled: Also list cancelled appointments.
        """
        items = [a for a in self.appointments.values() if include_cancelled or a.status == "scheduled"]
        return AppointmentList(appointments=sorted(items, key=lambda a: (a.date, a.start_time)))

    @tool("Appointment scheduling")
    def reschedule_doctor_appointment(self, appointment_id: str, slot_id: str) -> Appointment:
        """Move an appointment to another free slot of the same doctor.

        Args:
            appointment_id: Identifier of the appointment to move.
            slot_id: Identifier of the new free slot of the same doctor.
        """
        appointment = self._appointment(appointment_id)
        if appointment.status != "scheduled":
            raise ToolError("appointment_cancelled", f"appointment '{appointment_id}' was cancelled; book a new one")
        doctor = self._slot_owner(slot_id)
        if doctor.profile.doctor_id != appointment.doctor_id:
            raise ToolError("different_doctor", f"slot '{slot_id}' belongs to another doctor; book a new appointment instead")
        if slot_id in self.booked_slots:
            raise ToolError("slot_unavailable", f"slot '{slot_id}' is already booked")
        self._free_slot_of(appointment_id)
        self.booked_slots[slot_id] = appointment_id
        appointment.date, appointment.start_time = doctor.slots[slot_id]
        return appointment

    @tool("Appointment scheduling")
    def cancel_doctor_appointment(self, appointment_id: str) -> Appointment:
        """Cancel an appointment; its slot becomes free again.

        Args:
            appointment_id: Identifier of the appointment.
        """
        appointment = self._appointment(appointment_id)
        if appointment.status != "scheduled":
            raise ToolError("appointment_cancelled", f"appointment '{appointment_id}' is already cancelled")
        self._free_slot_of(appointment_id)
        appointment.status = "cancelled"
        return appointment

    # ------------------------------------------------------------------ prescriptions
    @tool("Prescriptions and insurance")
    def list_prescriptions(self) -> PrescriptionList:
        """The patient's active prescriptions and refills left on each."""
        return PrescriptionList(
            prescriptions=[
                PrescriptionSummary(
                    prescription_id=p.details.prescription_id,
                    medication_name=p.details.medication_name,
                    refills_remaining=p.details.refills_remaining,
                )
                for p in self.prescriptions.values()
            ]
        )

    @tool("Prescriptions and insurance")
    def get_prescription_details(self, prescription_id: str) -> PrescriptionDetails:
        """Medication, dosage, supply, refills left and prescribing doctor of a prescription.

        Args:
            prescription_id: Identifier of the prescription.
        """
        return self._prescription(prescription_id)

    @tool("Prescriptions and insurance")
    def check_insurance_coverage(self, medication_name: str) -> CoverageCheck:
        """Whether the patient's insurance covers a medication, and the copay per fill.

        Args:
            medication_name: Name of the medication, e.g. 'Lisinopril'.
        """
        key = next((m for m in _FORMULARY if m.lower() == medication_name.lower()), None)
        if key is None:
            raise ToolError("unknown_medication", f"'{medication_name}' is not in the plan's formulary")
        _, _, covered, copay, prior = _FORMULARY[key]
        return CoverageCheck(medication_name=key, covered=covered, copay=copay, requires_prior_authorization=prior)

    @tool("Prescriptions and insurance")
    def search_pharmacies(self, city: str) -> PharmacyList:
        """Pharmacies in a city that can fill prescriptions.

        Args:
            city: City to look in.
        """
        return PharmacyList(pharmacies=[p for p in self.pharmacies.values() if p.city.lower() == city.lower()])

    @tool("Prescriptions and insurance")
    def request_prescription_refill(self, prescription_id: str, pharmacy_id: str) -> Refill:
        """Ask a pharmacy to refill a prescription; the plan must cover the medication.

        Args:
            prescription_id: Identifier of the prescription.
            pharmacy_id: Identifier of the pharmacy that fills it.
        """
        details = self._prescription(prescription_id)
        if pharmacy_id not in self.pharmacies:
            raise ToolError("unknown_pharmacy", f"no pharmacy with id '{pharmacy_id}'")
        if details.refills_remaining <= 0:
            raise ToolError("no_refills_left", f"no refills left on '{prescription_id}'; ask the prescribing doctor for a renewal")
        _, _, covered, copay, prior = _FORMULARY[details.medication_name]
        if not covered:
            raise ToolError("not_covered", f"{details.medication_name} is not covered by the patient's plan")
        if prior:
            raise ToolError("prior_authorization_required", f"{details.medication_name} needs prior authorization from the doctor")
        if any(r.prescription_id == prescription_id and r.status == "processing" for r in self.refills.values()):
            raise ToolError("refill_in_progress", f"a refill of '{prescription_id}' is already being processed")
        details.refills_remaining -= 1
        refill_id = self.new_id("RF")
        self.refills[refill_id] = Refill(
            refill_id=refill_id, prescription_id=prescription_id, pharmacy_id=pharmacy_id, status="processing", copay=copay
        )
        return self.refills[refill_id]

    @tool("Prescriptions and insurance")
    def get_refill_status(self, refill_id: str) -> Refill:
        """Progress of a refill request: processing, then ready for pickup.

        Args:
            refill_id: Identifier of the refill request.
        """
        refill = self.refills.get(refill_id)
        if refill is None:
            raise ToolError("unknown_refill", f"no refill request with id '{refill_id}'")
        shown = refill.model_copy()
        refill.status = "ready_for_pickup"  # the pharmacy finishes between two checks
        return shown
