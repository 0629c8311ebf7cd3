"""Patients and appointments CRUD. Every handler borrows one pooled connection."""
from typing import List

import asyncpg
from fastapi import APIRouter, HTTPException, Request, Response

from .models import Appointment, AppointmentIn, AppointmentPatch, Patient, PatientIn

router = APIRouter()

P_COLS = "id, name, birth_date, created_at"
A_COLS = "id, patient_id, starts_at, reason, status, created_at"


def _db(request: Request):
    return request.app.state.db


def _not_found(kind, id_):
    return HTTPException(status_code=404, detail=f"{kind} {id_} not found")


@router.post("/patients", response_model=Patient, status_code=201)
async def create_patient(body: PatientIn, request: Request):
    async with _db(request).conn() as con:
        row = await con.fetchrow(
            f"INSERT INTO patients (name, birth_date) VALUES ($1, $2) RETURNING {P_COLS}",
            body.name, body.birth_date)
    return dict(row)


@router.get("/patients", response_model=List[Patient])
async def list_patients(request: Request, limit: int = 100, offset: int = 0):
    limit = max(1, min(limit, 500))
    async with _db(request).conn() as con:
        rows = await con.fetch(
            f"SELECT {P_COLS} FROM patients ORDER BY id LIMIT $1 OFFSET $2", limit, max(0, offset))
    return [dict(r) for r in rows]


@router.get("/patients/{patient_id}", response_model=Patient)
async def get_patient(patient_id: int, request: Request):
    async with _db(request).conn() as con:
        row = await con.fetchrow(f"SELECT {P_COLS} FROM patients WHERE id = $1", patient_id)
    if row is None:
        raise _not_found("patient", patient_id)
    return dict(row)


@router.put("/patients/{patient_id}", response_model=Patient)
async def update_patient(patient_id: int, body: PatientIn, request: Request):
    async with _db(request).conn() as con:
        row = await con.fetchrow(
            f"UPDATE patients SET name = $2, birth_date = $3 WHERE id = $1 RETURNING {P_COLS}",
            patient_id, body.name, body.birth_date)
    if row is None:
        raise _not_found("patient", patient_id)
    return dict(row)


@router.delete("/patients/{patient_id}", status_code=204)
async def delete_patient(patient_id: int, request: Request):
    async with _db(request).conn() as con:
        done = await con.execute("DELETE FROM patients WHERE id = $1", patient_id)
    if done == "DELETE 0":
        raise _not_found("patient", patient_id)
    return Response(status_code=204)


@router.get("/patients/{patient_id}/appointments", response_model=List[Appointment])
async def list_patient_appointments(patient_id: int, request: Request):
    async with _db(request).conn() as con:
        if await con.fetchval("SELECT 1 FROM patients WHERE id = $1", patient_id) is None:
            raise _not_found("patient", patient_id)
        rows = await con.fetch(
            f"SELECT {A_COLS} FROM appointments WHERE patient_id = $1 ORDER BY starts_at",
            patient_id)
    return [dict(r) for r in rows]


@router.post("/appointments", response_model=Appointment, status_code=201)
async def create_appointment(body: AppointmentIn, request: Request):
    try:
        async with _db(request).conn() as con:
            row = await con.fetchrow(
                f"INSERT INTO appointments (patient_id, starts_at, reason, status) "
                f"VALUES ($1, $2, $3, $4) RETURNING {A_COLS}",
                body.patient_id, body.starts_at, body.reason, body.status)
    except asyncpg.ForeignKeyViolationError:
        raise HTTPException(status_code=422,
                            detail=f"patient_id: patient {body.patient_id} does not exist") from None
    return dict(row)


@router.get("/appointments", response_model=List[Appointment])
async def list_appointments(request: Request, limit: int = 100, offset: int = 0):
    limit = max(1, min(limit, 500))
    async with _db(request).conn() as con:
        rows = await con.fetch(
            f"SELECT {A_COLS} FROM appointments ORDER BY id LIMIT $1 OFFSET $2", limit, max(0, offset))
    return [dict(r) for r in rows]


@router.get("/appointments/{appointment_id}", response_model=Appointment)
async def get_appointment(appointment_id: int, request: Request):
    async with _db(request).conn() as con:
        row = await con.fetchrow(f"SELECT {A_COLS} FROM appointments WHERE id = $1", appointment_id)
    if row is None:
        raise _not_found("appointment", appointment_id)
    return dict(row)


@router.patch("/appointments/{appointment_id}", response_model=Appointment)
async def update_appointment(appointment_id: int, body: AppointmentPatch, request: Request):
    async with _db(request).conn() as con:
        row = await con.fetchrow(
            f"UPDATE appointments SET starts_at = COALESCE($2, starts_at), "
            f"reason = COALESCE($3, reason), status = COALESCE($4, status) "
            f"WHERE id = $1 RETURNING {A_COLS}",
            appointment_id, body.starts_at, body.reason, body.status)
    if row is None:
        raise _not_found("appointment", appointment_id)
    return dict(row)


@router.delete("/appointments/{appointment_id}", status_code=204)
async def delete_appointment(appointment_id: int, request: Request):
    async with _db(request).conn() as con:
        done = await con.execute("DELETE FROM appointments WHERE id = $1", appointment_id)
    if done == "DELETE 0":
        raise _not_found("appointment", appointment_id)
    return Response(status_code=204)
