-- Run once by the postgres image on an empty data folder: the MLflow backend's database
-- (the Optuna study lives in POSTGRES_DB=optuna).
CREATE DATABASE mlflow;
