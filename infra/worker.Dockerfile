# The image Prefect workers run: the platform installed, flows imported as modules.
# Build from the repository root: docker build -f infra/worker.Dockerfile -t mlops-worker .
FROM python:3.11-slim
WORKDIR /opt/mlops
COPY pyproject.toml README.md ./
COPY flows ./flows
COPY tasks ./tasks
COPY expectations ./expectations
RUN pip install --no-cache-dir . \
    && useradd --create-home mlops
USER mlops
ENV MLOPS_HOME=/home/mlops/.mlops \
    MLOPS_SUITES_DIR=/opt/mlops/expectations \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1
CMD ["prefect", "worker", "start", "--pool", "mlops", "--type", "process"]
