-- Prefect's database and MLflow's auth database beside MLflow's store (created by POSTGRES_DB).
CREATE DATABASE prefect;
CREATE DATABASE mlflow_auth;
