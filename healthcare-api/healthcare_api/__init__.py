"""healthcare-api: patients and appointments on PostgreSQL, with a bounded connection pool."""
