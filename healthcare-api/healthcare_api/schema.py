"""The schema, created idempotently at start so a fresh or an existing database both work."""

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS patients (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        birth_date  DATE NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS appointments (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        patient_id  BIGINT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        starts_at   TIMESTAMPTZ NOT NULL,
        reason      TEXT NOT NULL DEFAULT '',
        status      TEXT NOT NULL DEFAULT 'scheduled'
                    CHECK (status IN ('scheduled', 'done', 'cancelled')),
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX IF NOT EXISTS appointments_patient_id ON appointments (patient_id)",
)

# Two replicas may start at once: an advisory lock keeps their CREATE statements from racing
# on the catalog (CREATE ... IF NOT EXISTS alone can still fail with a unique violation).
LOCK_KEY = 727_100_9


async def ensure(conn) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        for stmt in STATEMENTS:
            await conn.execute(stmt)
