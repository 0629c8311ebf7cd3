"""A bounded asyncpg pool: at most DB_POOL_SIZE connections, waiters time out into a 503."""
import asyncio
import contextlib

import asyncpg

from . import schema


class Unavailable(Exception):
    """The database cannot serve this request now; the API answers 503."""


class Database:
    def __init__(self, settings, metrics) -> None:
        self._s = settings
        self._m = metrics
        self._pool = None
        self._waiting = 0
        self.schema_ready = False
        metrics.pool_max.set(settings.pool_size)
        metrics.pool_open.set_function(lambda: self._pool.get_size() if self._pool else 0)
        metrics.pool_in_use.set_function(
            lambda: (self._pool.get_size() - self._pool.get_idle_size()) if self._pool else 0)
        metrics.pool_waiting.set_function(lambda: self._waiting)

    async def open(self) -> None:
        # min_size=0: the process starts (and /healthz answers) even while the database is down.
        self._pool = await asyncpg.create_pool(
            host=self._s.db_host, port=self._s.db_port, database=self._s.db_name,
            user=self._s.db_user, password=self._s.db_password,
            min_size=0, max_size=self._s.pool_size,
            max_inactive_connection_lifetime=60, command_timeout=30, timeout=5,
            server_settings={"application_name": "healthcare-api"})

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @contextlib.asynccontextmanager
    async def conn(self):
        self._waiting += 1
        try:
            con = await self._pool.acquire(timeout=self._s.pool_timeout)
        except asyncio.TimeoutError:
            self._m.pool_timeouts.inc()
            raise Unavailable("no database connection free within DB_POOL_TIMEOUT") from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise Unavailable(f"database unreachable: {type(e).__name__}") from None
        finally:
            self._waiting -= 1
        try:
            yield con
        except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.AdminShutdownError) as e:
            # One lost connection means the server restarted or moved: every other pooled
            # connection is stale too. Drop them all now instead of failing once per connection.
            await self._pool.expire_connections()
            raise Unavailable(f"database connection lost: {type(e).__name__}") from None
        finally:
            await self._pool.release(con)

    async def ensure_schema(self) -> None:
        async with self.conn() as con:
            await schema.ensure(con)
        self.schema_ready = True

    async def ensure_schema_forever(self, log, interval=2.0) -> None:
        """Retries until the schema exists: the database may start after the API."""
        while not self.schema_ready:
            try:
                await self.ensure_schema()
                log.info("schema ready")
            except Unavailable as e:
                log.warning("schema not created yet (%s); retrying in %.0fs", e, interval)
                await asyncio.sleep(interval)

    async def ping(self) -> bool:
        try:
            async with self.conn() as con:
                await con.fetchval("SELECT 1", timeout=2)
            ok = self.schema_ready
        except asyncio.TimeoutError:
            # A connection to a Postgres pod that is gone (new pod IP) times out instead of
            # failing: expire the pool so the next probe dials the Service afresh.
            await self._pool.expire_connections()
            ok = False
        except (Unavailable, asyncpg.PostgresError):
            ok = False
        self._m.db_up.set(1 if ok else 0)
        return ok
