-- One database per service (DESIGN.md §1). Run once by the postgres image on first start.
CREATE DATABASE user_management_db;
CREATE DATABASE service_registry_db;
CREATE DATABASE job_processing_db;
CREATE DATABASE file_management_db;
CREATE DATABASE notification_db;
CREATE DATABASE monitoring_db;
