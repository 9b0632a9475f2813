-- Database and roles for Bianmin's read models. The engine migrates its own tables.
CREATE ROLE bianmin LOGIN;
CREATE DATABASE bianmin OWNER bianmin;
-- Dashboards and BI tools read the projection tables only.
CREATE ROLE bianmin_dashboard LOGIN;
\c bianmin
GRANT USAGE ON SCHEMA public TO bianmin_dashboard;
ALTER DEFAULT PRIVILEGES FOR ROLE bianmin IN SCHEMA public GRANT SELECT ON TABLES TO bianmin_dashboard;
