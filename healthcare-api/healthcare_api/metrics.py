"""Prometheus metrics on a registry of our own, so tests can build many apps in one process."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "healthcare_api_http_requests", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "healthcare_api_http_request_duration_seconds", "HTTP request latency.",
            ["method", "route"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.pool_max = Gauge(
            "healthcare_api_db_pool_max_connections", "Configured pool bound (DB_POOL_SIZE).",
            registry=r)
        self.pool_open = Gauge(
            "healthcare_api_db_pool_connections", "Open connections held by the pool.", registry=r)
        self.pool_in_use = Gauge(
            "healthcare_api_db_pool_in_use", "Connections lent to requests right now.", registry=r)
        self.pool_waiting = Gauge(
            "healthcare_api_db_pool_waiting", "Requests waiting for a free connection.", registry=r)
        self.pool_timeouts = Counter(
            "healthcare_api_db_pool_acquire_timeouts",
            "Requests answered 503 because no connection freed up within DB_POOL_TIMEOUT.",
            registry=r)
        self.db_up = Gauge(
            "healthcare_api_db_up", "1 if the last readiness check reached the database.", registry=r)
