-- Creates or updates the api's and postgres_exporter's roles. Idempotent: it runs on every change of
-- the script or of a password, against a fresh or an existing database. Values come from the
-- environment (\getenv, psql >= 15), so no credential is written into this file or a command line.
\set ON_ERROR_STOP on
\getenv api_user API_DB_USER
\getenv api_db API_DB_NAME
\getenv api_password API_DB_PASSWORD
\getenv api_connection_limit API_DB_CONNECTION_LIMIT
\getenv exporter_user EXPORTER_USER
\getenv exporter_password EXPORTER_PASSWORD

-- The api: owns its database, nothing else. Its connection limit is its pool budget, so a
-- misconfigured pool fails loudly in the api instead of starving Postgres.
SELECT format('CREATE ROLE %I LOGIN', :'api_user')
  WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'api_user') \gexec
ALTER ROLE :"api_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  CONNECTION LIMIT :api_connection_limit PASSWORD :'api_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'api_db', :'api_user')
  WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = :'api_db') \gexec
REVOKE ALL ON DATABASE :"api_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"api_db" TO :"api_user";

-- postgres_exporter: read-only monitoring through pg_monitor, a handful of connections.
SELECT format('CREATE ROLE %I LOGIN', :'exporter_user')
  WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'exporter_user') \gexec
ALTER ROLE :"exporter_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  CONNECTION LIMIT 3 PASSWORD :'exporter_password';
GRANT pg_monitor TO :"exporter_user";
GRANT CONNECT ON DATABASE postgres TO :"exporter_user";
