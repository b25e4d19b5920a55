"""A second business, configured only through the admin API: a clinic with `patients` and
`appointments`, its declared tools, its agent (caller-ID identity on the patients) and seed data.

Nothing here is Switchboard code: it is what an operator would POST, and what their database holds.
"""

from __future__ import annotations

from typing import Any

from db import Database

PATIENT_PHONE = "+15005550006"
"""The simulator's default caller ID: this patient calls."""
PATIENT = "P-7001"
OTHER_PATIENT = "P-7002"

MY_APPOINTMENTS: dict[str, Any] = {
    "name": "my_appointments",
    "kind": "mongo_find",
    "description": "The caller's upcoming appointments: day, time, doctor and department.",
    "collection": "appointments",
    "scope": "caller",
    "identity_field": "patient_id",
    "arguments": [
        {
            "name": "department",
            "type": "enum",
            "values": ["cardiology", "dermatology", "general"],
            "description": "only this department",
        }
    ],
    "returns": ["appointment_id", "day", "time", "doctor", "department"],
    "sort": [{"field": "day", "direction": "asc"}],
    "max_results": 3,
}
ADD_NOTE: dict[str, Any] = {
    "name": "add_appointment_note",
    "kind": "mongo_update_one",
    "description": "Add the caller's note (e.g. 'running late') to one of their appointments.",
    "collection": "appointments",
    "scope": "caller",
    "identity_field": "patient_id",
    "arguments": [
        {"name": "appointment_id", "type": "string", "max_length": 20, "pattern": "AP-[0-9]{1,8}", "required": True},
        {"name": "note", "type": "string", "max_length": 200, "required": True},
    ],
    "selective": ["appointment_id"],
    "set": {"note": {"argument": "note"}},
    "returns": ["appointment_id", "note"],
}
DEPARTMENT_HOURS: dict[str, Any] = {
    "name": "department_hours",
    "kind": "mongo_find",
    "description": "Opening hours of one clinic department.",
    "collection": "departments",
    "scope": "none",
    "arguments": [{"name": "name", "type": "string", "max_length": 40, "required": True}],
    "selective": ["name"],
    "returns": ["name", "hours"],
    "max_results": 1,
}
CLINIC_TOOLS = [MY_APPOINTMENTS, ADD_NOTE, DEPARTMENT_HOURS]

CLINIC_AGENT: dict[str, Any] = {
    "id": "clinic",
    "greeting": "Hello, you have reached the clinic.",
    "system_prompt": "You are the clinic's phone assistant. Use the tools for appointments; answer briefly.",
    "tools": ["my_appointments", "add_appointment_note", "department_hours@1"],
    "identity": {"collection": "patients", "key_field": "patient_id", "phone_field": "phone"},
}
"""Caller-ID identity with no further proof (the default policy), on the clinic's own patients."""

PATIENTS = [
    {"patient_id": PATIENT, "name": "Ada Byron", "phone": PATIENT_PHONE},
    {"patient_id": OTHER_PATIENT, "name": "Alan Turing", "phone": "+15005550077"},
]
APPOINTMENTS = [
    {
        "appointment_id": "AP-1",
        "patient_id": PATIENT,
        "day": "2031-03-14",
        "time": "09:30",
        "doctor": "Doctor Lee",
        "department": "cardiology",
    },
    {
        "appointment_id": "AP-2",
        "patient_id": OTHER_PATIENT,
        "day": "2031-03-10",
        "time": "11:00",
        "doctor": "Doctor Okafor",
        "department": "cardiology",
    },
]
DEPARTMENTS = [{"name": "cardiology", "hours": "eight to four"}, {"name": "general", "hours": "seven to seven"}]


async def seed_clinic(database: Database) -> None:
    """The clinic's data in its business collections (what the operator's database already holds)."""
    for collection, documents in (("patients", PATIENTS), ("appointments", APPOINTMENTS), ("departments", DEPARTMENTS)):
        await database.collection(collection).insert_many([dict(document) for document in documents])
