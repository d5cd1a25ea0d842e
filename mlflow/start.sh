#!/bin/sh
# Start command of the MLflow tracking server in the production stack (infra/docker-compose.yml).
# Backend store: PostgreSQL. Artifacts: the S3 bucket, proxied by the server (clients need no
# bucket credentials). Basic auth: the admin account comes from the environment, never a file
# in the repository.
set -eu
: "${MLFLOW_BACKEND_STORE_URI:?postgresql://user:password@host:5432/mlflow}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?s3://bucket/prefix}"
: "${MLFLOW_ADMIN_USERNAME:?admin user name}"
: "${MLFLOW_ADMIN_PASSWORD:?admin password}"

auth_config=/tmp/basic_auth.ini
sed -e "s|@ADMIN_USERNAME@|${MLFLOW_ADMIN_USERNAME}|" \
    -e "s|@ADMIN_PASSWORD@|${MLFLOW_ADMIN_PASSWORD}|" \
    -e "s|@AUTH_DATABASE_URI@|${MLFLOW_AUTH_DATABASE_URI:-$MLFLOW_BACKEND_STORE_URI}|" \
    /etc/mlflow/basic_auth.ini > "$auth_config"
export MLFLOW_AUTH_CONFIG_PATH="$auth_config"

exec mlflow server \
    --app-name basic-auth \
    --host 0.0.0.0 --port "${MLFLOW_PORT:-5000}" \
    --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
    --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
    --serve-artifacts \
    --workers "${MLFLOW_WORKERS:-2}"
