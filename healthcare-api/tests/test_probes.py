"""Probes: /healthz is the process, /readyz is the database. Tests here stop and restart Postgres."""
import os
import shutil


def test_readyz_follows_the_database(api, postgres):
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/readyz").status_code == 200
    postgres.stop()
    try:
        r = api.wait("/readyz", status=503)
        assert r.json()["database"].startswith("unreachable")
        assert api.client.get("/healthz").status_code == 200  # liveness must not restart us
        assert api.client.get("/patients").status_code == 503
        assert api.metric("healthcare_api_db_up") == 0.0
    finally:
        postgres.start()
    api.wait("/readyz", status=200)
    assert api.client.get("/patients").status_code == 200


def test_api_started_before_the_database_becomes_ready(start_server, postgres):
    postgres.stop()
    try:
        api = start_server()
        assert api.wait("/healthz").json() == {"status": "ok"}
        assert api.client.get("/readyz").status_code == 503
    finally:
        postgres.start()
    api.wait("/readyz", timeout=30)
    r = api.client.post("/patients", json={"name": "Late Start", "birth_date": "2000-02-29"})
    assert r.status_code == 201


def test_serving_writes_no_files(start_server, tmp_path):
    # The pod runs on a read-only root filesystem: the app must not write bytecode or state.
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "healthcare_api")
    app_copy = tmp_path / "app"
    shutil.copytree(src, app_copy / "healthcare_api",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = sorted(str(p) for p in app_copy.rglob("*"))
    api = start_server(PYTHONPATH=str(app_copy))
    api.wait("/readyz")
    api.client.post("/patients", json={"name": "No Writes", "birth_date": "1990-01-01"})
    api.client.get("/metrics")
    assert sorted(str(p) for p in app_copy.rglob("*")) == before
