def new_patient(api, name="Ada Lovelace", birth="1815-12-10"):
    r = api.client.post("/patients", json={"name": name, "birth_date": birth})
    assert r.status_code == 201, r.text
    return r.json()


def test_patient_lifecycle(api):
    p = new_patient(api)
    assert p["name"] == "Ada Lovelace" and p["birth_date"] == "1815-12-10" and p["id"] > 0

    assert api.client.get(f"/patients/{p['id']}").json() == p
    assert p["id"] in [x["id"] for x in api.client.get("/patients").json()]

    r = api.client.put(f"/patients/{p['id']}", json={"name": "Ada King", "birth_date": "1815-12-10"})
    assert r.status_code == 200 and r.json()["name"] == "Ada King"
    assert api.client.get(f"/patients/{p['id']}").json()["name"] == "Ada King"

    assert api.client.delete(f"/patients/{p['id']}").status_code == 204
    assert api.client.get(f"/patients/{p['id']}").status_code == 404
    assert api.client.delete(f"/patients/{p['id']}").status_code == 404


def test_patient_is_really_stored_in_postgres(api, postgres):
    p = new_patient(api, name="Grace Hopper", birth="1906-12-09")
    assert postgres.sql(f"SELECT name || '|' || birth_date FROM patients WHERE id = {p['id']}") \
        == "Grace Hopper|1906-12-09"


def test_invalid_patient_is_rejected(api):
    assert api.client.post("/patients", json={"name": "", "birth_date": "1900-01-01"}).status_code == 422
    assert api.client.post("/patients", json={"name": "X", "birth_date": "yesterday"}).status_code == 422
    assert api.client.get("/patients/not-a-number").status_code == 422


def test_appointment_lifecycle(api):
    p = new_patient(api, name="Alan Turing", birth="1912-06-23")
    body = {"patient_id": p["id"], "starts_at": "2030-01-02T09:30:00+00:00", "reason": "checkup"}
    r = api.client.post("/appointments", json=body)
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["status"] == "scheduled" and a["reason"] == "checkup"

    assert api.client.get(f"/appointments/{a['id']}").json() == a
    assert [x["id"] for x in api.client.get(f"/patients/{p['id']}/appointments").json()] == [a["id"]]

    r = api.client.patch(f"/appointments/{a['id']}", json={"status": "done"})
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["reason"] == "checkup"
    assert api.client.patch(f"/appointments/{a['id']}", json={"status": "lost"}).status_code == 422

    # Deleting the patient removes their appointments.
    assert api.client.delete(f"/patients/{p['id']}").status_code == 204
    assert api.client.get(f"/appointments/{a['id']}").status_code == 404


def test_appointment_for_unknown_patient_names_the_field(api):
    r = api.client.post("/appointments", json={"patient_id": 987654321,
                                               "starts_at": "2030-01-02T09:30:00Z"})
    assert r.status_code == 422
    assert "patient_id" in r.json()["detail"]
    assert api.client.get("/patients/987654321/appointments").status_code == 404


def test_schema_creation_is_idempotent(api, start_server):
    # A second replica starting against the same, already initialised database must become ready.
    second = start_server()
    second.wait("/readyz")
    assert second.client.get("/patients").status_code == 200


def test_metrics_are_prometheus_text(api):
    api.client.get("/patients")
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE healthcare_api_http_requests_total counter" in r.text
    assert 'healthcare_api_http_requests_total{method="GET",route="/patients",status="200"}' in r.text
    assert api.metric("healthcare_api_db_pool_max_connections") == 3.0
    assert api.metric("healthcare_api_db_up") == 1.0
