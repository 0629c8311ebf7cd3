"""Request and response bodies (pydantic v1, as Debian 12 ships it)."""
import datetime as dt
from typing import Optional

from pydantic import BaseModel, constr


class PatientIn(BaseModel):
    name: constr(strip_whitespace=True, min_length=1, max_length=200)
    birth_date: dt.date


class Patient(PatientIn):
    id: int
    created_at: dt.datetime


class AppointmentIn(BaseModel):
    patient_id: int
    starts_at: dt.datetime
    reason: constr(max_length=1000) = ""
    status: constr(regex="^(scheduled|done|cancelled)$") = "scheduled"


class AppointmentPatch(BaseModel):
    starts_at: Optional[dt.datetime] = None
    reason: Optional[constr(max_length=1000)] = None
    status: Optional[constr(regex="^(scheduled|done|cancelled)$")] = None


class Appointment(AppointmentIn):
    id: int
    created_at: dt.datetime
