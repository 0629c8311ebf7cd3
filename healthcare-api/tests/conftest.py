"""Fixtures: a real PostgreSQL 15 on loopback in a temp dir, and the API as a real process.

PostgreSQL refuses to run as root, so when the tests run as root its commands run as `nobody`.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PASSWORD = "s3cret-for-tests-only"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, root: str) -> None:
        self.root = root
        self.data = os.path.join(root, "data")
        self.port = free_port()
        self.pwfile = os.path.join(root, "password")
        self.as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []

    def _run(self, *args, env=None):
        subprocess.run(self.as_user + list(args), check=True, capture_output=True, env=env,
                       timeout=120)

    def init(self) -> None:
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self.as_user:
            for p in (self.root, self.pwfile):
                shutil.chown(p, "nobody")
        self._run(os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "healthcare",
                  "--auth=scram-sha-256", f"--pwfile={self.pwfile}", "-E", "UTF8", "--no-sync")
        self.start()
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        self._run(os.path.join(PG_BIN, "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "healthcare", "healthcare", env=env)

    def start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                f"-c fsync=off -c max_connections=50")
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l",
                  os.path.join(self.root, "log"), "-o", opts, "-w", "start")

    def stop(self) -> None:
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def session(self) -> subprocess.Popen:
        """An interactive psql whose stdin the test writes, to hold locks across requests."""
        return subprocess.Popen(
            [os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "healthcare", "-d", "healthcare", "-q", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env=dict(os.environ, PGPASSWORD=PASSWORD))

    def sql(self, query: str) -> str:
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        out = subprocess.run(
            [os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "healthcare", "-d", "healthcare", "-Atc", query],
            check=True, capture_output=True, text=True, env=env, timeout=30)
        return out.stdout.strip()


@pytest.fixture(scope="session")
def postgres():
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}; apt-get install postgresql-15")
    root = tempfile.mkdtemp(prefix="healthcare-api-pg-")
    os.chmod(root, 0o700)
    pg = Postgres(root)
    try:
        pg.init()
        yield pg
    finally:
        if pg.running():
            try:
                pg.stop()
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(root, ignore_errors=True)


class Server:
    def __init__(self, pg: Postgres, app_dir: str, workdir: str, **env) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
        self.env = dict(
            base, PYTHONPATH=app_dir, PYTHONDONTWRITEBYTECODE="1", HOME=workdir,
            DB_HOST="127.0.0.1", DB_PORT=str(pg.port), DB_NAME="healthcare", DB_USER="healthcare",
            DB_PASSWORD_FILE=pg.pwfile, LISTEN_HOST="127.0.0.1", PORT=str(self.port))
        self.env.update(env)
        self.log = open(os.path.join(workdir, f"server-{self.port}.log"), "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "healthcare_api"], cwd=workdir,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait(self, path: str, status: int = 200, timeout: float = 20.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                last = self.client.get(path)
                if last.status_code == status:
                    return last
            except httpx.TransportError as e:
                last = e
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered {status} (last: {last!r})\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def metric(self, name: str) -> float:
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"metric {name} not exposed")

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def start_server(postgres, tmp_path):
    servers = []

    def start(**env) -> Server:
        s = Server(postgres, APP_DIR, str(tmp_path), **env)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


@pytest.fixture(scope="module")
def api(postgres, tmp_path_factory):
    s = Server(postgres, APP_DIR, str(tmp_path_factory.mktemp("api")), DB_POOL_SIZE="3")
    try:
        s.wait("/readyz")
        yield s
    finally:
        s.close()
