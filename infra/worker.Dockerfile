# The image Prefect workers run: the platform installed, flows imported as modules.
# Build from the repository root: docker build -f infra/worker.Dockerfile -t mlops-worker .
FROM python:3.11-slim
WORKDIR /opt/mlops
COPY pyproject.toml README.md ./
COPY flows ./flows
COPY tasks ./tasks
COPY expectations ./expectations
# uid 1000: the Dask TLS keys of infra/make-certs.sh, mounted read-only, are readable by their
# owner only (docs/security.md).
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 1000 mlops
# The one-shot that makes MLflow's accounts (compose service and Kubernetes Job mlflow-accounts).
COPY infra/mlflow-accounts.py ./infra/mlflow-accounts.py
USER mlops
ENV MLOPS_HOME=/home/mlops/.mlops \
    MLOPS_SUITES_DIR=/opt/mlops/expectations \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1
CMD ["prefect", "worker", "start", "--pool", "mlops", "--type", "process"]
