#!/bin/sh
# Start command of the MLflow tracking server in the production stack (infra/docker-compose.yml).
# Backend store: PostgreSQL. Artifacts: the S3 bucket, proxied by the server (clients need no
# bucket credentials). Basic auth: the admin account comes from the environment, never a file
# in the repository; the other accounts from infra/mlflow-accounts.py.
set -eu
: "${MLFLOW_BACKEND_STORE_URI:?postgresql://user:password@host:5432/mlflow}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?s3://bucket/prefix}"
: "${MLFLOW_ADMIN_USERNAME:?admin user name}"
: "${MLFLOW_ADMIN_PASSWORD:?admin password (at least 12 characters)}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?a long random string (signs the UI forms, CSRF)}"

# Read by MLflow when it creates the admin, on its first start against an empty user store.
export MLFLOW_AUTH_ADMIN_USERNAME="$MLFLOW_ADMIN_USERNAME"
export MLFLOW_AUTH_ADMIN_PASSWORD="$MLFLOW_ADMIN_PASSWORD"

# The auth settings with their database, readable by this user only (the URI holds a
# password); `%` doubled, as MLflow reads the file with configparser's interpolation.
umask 077
auth_config=$(mktemp "${TMPDIR:-/tmp}/basic_auth.XXXXXX")
python3 - "${MLFLOW_AUTH_TEMPLATE:-/etc/mlflow/basic_auth.ini}" "$auth_config" <<'PY'
import os
import sys

uri = os.environ.get("MLFLOW_AUTH_DATABASE_URI") or os.environ["MLFLOW_BACKEND_STORE_URI"]
with open(sys.argv[1]) as template:
    text = template.read().replace("@AUTH_DATABASE_URI@", uri.replace("%", "%%"))
with open(sys.argv[2], "w") as config:
    config.write(text)
PY
export MLFLOW_AUTH_CONFIG_PATH="$auth_config"

# No job runner (about ten huey consumers, ~250 MB each): the platform submits no MLflow jobs.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"

exec mlflow server \
    --app-name basic-auth \
    --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" \
    --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
    --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
    --serve-artifacts \
    --workers "${MLFLOW_WORKERS:-2}"
