from magnet_lib.pool.envs.healthcare import HealthcareEnv
from tests.envs_support import ToolRecorder


def _first_free_day(r, doctor_id, dates):
    for date in dates:
        free = r.ok("get_doctor_availability", doctor_id=doctor_id, date=date)
        if len(free["slots"]) >= 2:
            return free
    raise AssertionError(f"{doctor_id} has no day with two free slots")


def test_book_reschedule_cancel():
    env = HealthcareEnv(seed=3)
    r = ToolRecorder(env)
    dates = env.user_values()["date"]
    doctors = r.ok("search_doctors", specialty="orthopedics", city="Cambridge")["doctors"]
    assert doctors and all(d["specialty"] == "orthopedics" and d["city"] == "Cambridge" for d in doctors)
    profile = next(p for p in (r.ok("get_doctor_profile", doctor_id=d["doctor_id"]) for d in doctors) if p["accepting_new_patients"])
    free = _first_free_day(r, profile["doctor_id"], dates)
    first, second = free["slots"][0], free["slots"][1]
    booked = r.ok("book_doctor_appointment", slot_id=first["slot_id"], reason="knee pain after running")
    assert (booked["date"], booked["start_time"], booked["status"]) == (free["date"], first["start_time"], "scheduled")
    # the booked slot is gone from the availability, and cannot be booked twice
    again = r.ok("get_doctor_availability", doctor_id=profile["doctor_id"], date=free["date"])
    assert first["slot_id"] not in [s["slot_id"] for s in again["slots"]]
    r.err("book_doctor_appointment", "slot_unavailable", slot_id=first["slot_id"], reason="second try")

    moved = r.ok("reschedule_doctor_appointment", appointment_id=booked["appointment_id"], slot_id=second["slot_id"])
    assert moved["start_time"] == second["start_time"]
    again = r.ok("get_doctor_availability", doctor_id=profile["doctor_id"], date=free["date"])
    assert first["slot_id"] in [s["slot_id"] for s in again["slots"]]
    assert r.ok("get_appointment_details", appointment_id=booked["appointment_id"])["start_time"] == second["start_time"]
    listed = [a["appointment_id"] for a in r.ok("list_my_appointments")["appointments"]]
    assert booked["appointment_id"] in listed and len(listed) == 3  # with the two the patient made before

    # a slot of another doctor cannot take this appointment
    other = next(d for d in env.doctors.values() if d.profile.doctor_id != profile["doctor_id"])
    r.err("reschedule_doctor_appointment", "different_doctor", appointment_id=booked["appointment_id"], slot_id=next(iter(other.slots)))

    assert r.ok("cancel_doctor_appointment", appointment_id=booked["appointment_id"])["status"] == "cancelled"
    assert booked["appointment_id"] not in [a["appointment_id"] for a in r.ok("list_my_appointments")["appointments"]]
    everything = r.ok("list_my_appointments", include_cancelled=True)["appointments"]
    assert booked["appointment_id"] in [a["appointment_id"] for a in everything]
    r.err("cancel_doctor_appointment", "appointment_cancelled", appointment_id=booked["appointment_id"])
    r.err("reschedule_doctor_appointment", "appointment_cancelled", appointment_id=booked["appointment_id"], slot_id=first["slot_id"])
    again = r.ok("get_doctor_availability", doctor_id=profile["doctor_id"], date=free["date"])
    assert {first["slot_id"], second["slot_id"]} <= {s["slot_id"] for s in again["slots"]}

    closed = next(d for d in env.doctors.values() if not d.profile.accepting_new_patients)
    r.err("book_doctor_appointment", "not_accepting_patients", slot_id=next(iter(closed.slots)), reason="headache")
    r.err("get_doctor_availability", "invalid_date", doctor_id=profile["doctor_id"], date="next Tuesday")
    r.err("get_doctor_profile", "unknown_doctor", doctor_id="DR-1")
    r.err("book_doctor_appointment", "unknown_slot", slot_id="SL-1", reason="headache")
    r.err("get_appointment_details", "unknown_appointment", appointment_id="AP-1")


def test_coverage_gated_refill():
    env = HealthcareEnv(seed=3)
    r = ToolRecorder(env)
    prescriptions = r.ok("list_prescriptions")["prescriptions"]
    details = {p["prescription_id"]: r.ok("get_prescription_details", prescription_id=p["prescription_id"]) for p in prescriptions}
    coverage = {pid: r.ok("check_insurance_coverage", medication_name=d["medication_name"]) for pid, d in details.items()}
    doctor_city = r.ok("get_doctor_profile", doctor_id=next(iter(details.values()))["doctor_id"])["city"]
    pharmacy = r.ok("search_pharmacies", city=doctor_city)["pharmacies"][0]
    assert pharmacy["city"] == doctor_city

    refillable = next(
        pid
        for pid, c in coverage.items()
        if c["covered"] and not c["requires_prior_authorization"] and details[pid]["refills_remaining"] > 0
    )
    refill = r.ok("request_prescription_refill", prescription_id=refillable, pharmacy_id=pharmacy["pharmacy_id"])
    assert refill["copay"] == coverage[refillable]["copay"] and refill["status"] == "processing"
    left = r.ok("get_prescription_details", prescription_id=refillable)["refills_remaining"]
    assert left == details[refillable]["refills_remaining"] - 1
    r.err("request_prescription_refill", "refill_in_progress", prescription_id=refillable, pharmacy_id=pharmacy["pharmacy_id"])
    assert r.ok("get_refill_status", refill_id=refill["refill_id"])["status"] == "processing"
    assert r.ok("get_refill_status", refill_id=refill["refill_id"])["status"] == "ready_for_pickup"

    for pid, c in coverage.items():
        if details[pid]["refills_remaining"] == 0:
            r.err("request_prescription_refill", "no_refills_left", prescription_id=pid, pharmacy_id=pharmacy["pharmacy_id"])
        elif not c["covered"]:
            assert c["copay"] == 0
            r.err("request_prescription_refill", "not_covered", prescription_id=pid, pharmacy_id=pharmacy["pharmacy_id"])
        elif c["requires_prior_authorization"]:
            r.err("request_prescription_refill", "prior_authorization_required", prescription_id=pid, pharmacy_id=pharmacy["pharmacy_id"])
    r.err("request_prescription_refill", "unknown_pharmacy", prescription_id=refillable, pharmacy_id="PH-1")
    r.err("get_prescription_details", "unknown_prescription", prescription_id="RX-1")
    r.err("check_insurance_coverage", "unknown_medication", medication_name="Unobtainium")
    r.err("get_refill_status", "unknown_refill", refill_id="RF-1")
    assert r.ok("search_pharmacies", city="Atlantis")["pharmacies"] == []


def test_every_tool_in_one_episode():
    env = HealthcareEnv(seed=11)
    r = ToolRecorder(env)
    existing = r.ok("list_my_appointments")["appointments"][0]
    r.ok("get_appointment_details", appointment_id=existing["appointment_id"])
    doctor_id = r.ok("search_doctors", specialty="cardiology")["doctors"][0]["doctor_id"]
    r.ok("get_doctor_profile", doctor_id=doctor_id)
    # a follow-up with the doctor the patient already sees: book, move, cancel
    free = _first_free_day(r, existing["doctor_id"], env.user_values()["date"])
    booked = r.ok("book_doctor_appointment", slot_id=free["slots"][0]["slot_id"], reason="follow-up")
    r.ok("reschedule_doctor_appointment", appointment_id=booked["appointment_id"], slot_id=free["slots"][1]["slot_id"])
    r.ok("cancel_doctor_appointment", appointment_id=booked["appointment_id"])
    pid = r.ok("list_prescriptions")["prescriptions"][0]["prescription_id"]
    medication = r.ok("get_prescription_details", prescription_id=pid)["medication_name"]
    r.ok("check_insurance_coverage", medication_name=medication)
    pharmacy_id = r.ok("search_pharmacies", city="Boston")["pharmacies"][0]["pharmacy_id"]
    covered = next(
        p
        for p in env.prescriptions.values()
        if r.ok("check_insurance_coverage", medication_name=p.details.medication_name)["covered"]
        and not r.ok("check_insurance_coverage", medication_name=p.details.medication_name)["requires_prior_authorization"]
        and p.details.refills_remaining > 0
    )
    refill = r.ok("request_prescription_refill", prescription_id=covered.details.prescription_id, pharmacy_id=pharmacy_id)
    r.ok("get_refill_status", refill_id=refill["refill_id"])
    r.assert_all_called()
