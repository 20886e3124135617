-- Run once by the postgres image on an empty volume (/docker-entrypoint-initdb.d), connected to
-- POSTGRES_DB (`pipelines`, the service's database) as POSTGRES_USER.
-- The Prefect server gets a database of its own, with pg_trgm, which its migrations require.
CREATE DATABASE prefect;
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
