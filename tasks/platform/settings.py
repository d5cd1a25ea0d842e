"""Platform settings: the only place that reads the environment."""

from __future__ import annotations

import os
import secrets
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.core.errors import PlatformError
from tasks.evaluation.promotion import PromotionPolicy
from tasks.platform.redaction import install_redactor

if TYPE_CHECKING:
    from tasks.data.features import Task

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A regression job's promotion policy, of each of these the environment does not set: the
# classification defaults (accuracy, F1, ROC AUC) are no metrics of a regressor. RMSE and MAE
# are errors, so their margin and tolerance are shares of the champion's (5% here; see
# tasks/evaluation/promotion.py).
REGRESSION_POLICY = {
    "promotion_metric": "test_rmse",
    "guard_metrics": ("test_mae",),
    "guard_tolerance": 0.05,
}


class Settings(BaseSettings):
    """Where the platform keeps its state, and the knobs of the training job.

    Standard names (``MLFLOW_TRACKING_URI``, ``PREFECT_API_URL``) come first so that an
    existing MLflow or Prefect setup is picked up as it is; everything else is ``MLOPS_*``.
    """

    model_config = SettingsConfigDict(env_prefix="MLOPS_", extra="ignore")

    home: Path = Field(default=Path("~/.mlops"), description="State of the embedded default.")
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI"),
        description="MLflow tracking store; default: SQLite under the home.",
    )
    artifact_uri: str | None = Field(
        default=None, description="Artifact root; default: a folder under the home."
    )
    prefect_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PREFECT_API_URL"),
        description="Prefect API; default: Prefect's ephemeral local API.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"),
        description="S3-compatible endpoint (MinIO, Ceph); default: AWS.",
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY")
    )
    aws_session_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AWS_SESSION_TOKEN")
    )
    mlflow_tracking_username: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_USERNAME"),
        description="The account this process uses on a tracking server with basic auth.",
    )
    mlflow_tracking_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_PASSWORD")
    )
    mlflow_tracking_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_TOKEN")
    )
    prefect_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PREFECT_API_KEY")
    )
    results_key: SecretStr | None = Field(
        default=None,
        description="Signs persisted Prefect results; default: a key made once under the home.",
    )
    prefect_api_auth_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PREFECT_API_AUTH_STRING"),
        description="user:password of a Prefect server with basic auth.",
    )
    project: Path | None = Field(
        default=None,
        description="The project file declaring the models; default: ./mlops.yaml if there.",
    )
    suites_dir: Path = Field(
        default=PROJECT_ROOT / "expectations",
        description="Folder of Great Expectations suites (data contracts).",
    )
    seed: int = Field(default=42, description="Seed of splits, initialisation and folds.")
    test_size: float = Field(default=0.2, gt=0, lt=0.5)
    validation_size: float = Field(default=0.2, gt=0, lt=0.5)
    cv_folds: int = Field(default=5, ge=2, le=20)
    baseline_rows: int = Field(
        default=20_000,
        ge=100,
        description="Most training rows the scikit-learn baselines fit on (a seeded sample); "
        "the network trains on all of them.",
    )
    promotion_metric: str = Field(
        default="test_accuracy",
        description="Metric to beat the champion on (see REGRESSION_POLICY).",
    )
    promotion_margin: float = Field(
        default=0.0,
        ge=0,
        description="Gain needed; of an error (RMSE, MAE) a share of the champion's.",
    )
    guard_metrics: tuple[str, ...] = Field(default=("test_f1_macro", "test_roc_auc_ovr"))
    guard_tolerance: float = Field(
        default=0.01, ge=0, description="Most a guard may worsen; of an error, a share of it."
    )
    slice_min_rows: int = Field(
        default=50, ge=1, description="Rows a slice needs before the slice guard judges it."
    )
    slice_tolerance: float = Field(
        default=0.1,
        ge=0,
        description="Most a slice (a categorical value, a class) may worsen against the "
        "champion on the same rows; of an error, a share of it.",
    )
    compression_tolerance: float = Field(
        default=0.01, ge=0, description="Most a compact variant may lose; of an error, a share."
    )
    promotion_test: Literal["point", "non_inferior", "superior"] = Field(
        default="point",
        description="point: the scores decide; non_inferior: promote unless significantly "
        "worse than the champion (paired, same rows); superior: only if significantly better.",
    )
    retrain_cron: str = Field(
        default="0 3 * * 1", description="Schedule of the retrain deployment (weekly by default)."
    )
    drift_psi_threshold: float = Field(default=0.2, gt=0, description="PSI of a drifted feature")
    drift_alpha: float = Field(default=0.01, gt=0, lt=1, description="two-sample test level")
    drift_sample_rows: int = Field(default=1000, ge=50, description="rows kept in a profile")
    performance_tolerance: float = Field(
        default=0.02,
        ge=0,
        description="Most a champion's production metric (from labels fed back) may fall below "
        "its test metric before it is degraded: accuracy points, or a share of the RMSE.",
    )
    retrain_cooldown: int = Field(default=3600, ge=0, description="s between drift retrainings")
    training_data_uri: str | None = Field(default=None, description="what drift retrains on")
    notify_url: SecretStr | None = Field(default=None, description="webhook for failed runs")
    output_roots: tuple[str, ...] = Field(
        default=(),
        description="Where predictions may be written (folders, s3:// prefixes); "
        "default: the current folder, the home and the artifact root.",
    )
    failpoints: dict[str, Literal["kill", "pause", "break"]] = Field(
        default_factory=dict,
        description="Testing only: named points where the process dies or waits, "
        'e.g. {"after-register": "kill"}.',
    )
    serve_check: bool = Field(default=True, description="Serve a version before it registers.")
    serve_check_timeout: float = Field(default=120, gt=0, description="s to answer its canary")
    dask_address: str | None = Field(
        default=None,
        description="Dask scheduler (tcp://host:port) that runs a sweep's tasks and the "
        "partitions of a prediction; default: this machine.",
    )
    partition_rows: int = Field(
        default=250_000,
        ge=1,
        description="Rows `mlops predict` reads, checks and scores at a time (bounds its memory).",
    )
    sweep_workers: int = Field(
        default=2, ge=1, description="Sweep tasks run at once locally (without a Dask cluster)."
    )
    dask_tls_ca_file: Path | None = Field(
        default=None, description="CA certificate of a TLS Dask cluster (tls:// address)."
    )
    dask_tls_cert: Path | None = Field(
        default=None, description="This client's certificate for a TLS Dask cluster."
    )
    dask_tls_key: Path | None = Field(
        default=None, description="The private key of MLOPS_DASK_TLS_CERT."
    )

    @cached_property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def resolved_artifact_uri(self) -> str:
        return self.artifact_uri or (self.home_dir / "artifacts").as_uri()

    @property
    def local_servers_file(self) -> Path:
        """Where `mlops up` writes the addresses of the servers it started for this home."""
        return self.home_dir / "up.json"

    def fit_knobs(self) -> dict[str, float | int]:
        """The settings that change what a training job produces (part of its identity)."""
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "validation_size": self.validation_size,
            "cv_folds": self.cv_folds,
            "baseline_rows": self.baseline_rows,
        }

    def promotion_policy(self, task: Task = "classification") -> PromotionPolicy:
        """The promotion policy of a job of the task: the settings' metric, margin, guards and
        tolerance, and for regression REGRESSION_POLICY's of those the environment does not
        set. A metric of another task is refused: neither model is scored on it."""
        from tasks.evaluation.scoring import metrics_for

        chosen = {
            "promotion_metric": self.promotion_metric,
            "guard_metrics": self.guard_metrics,
            "guard_tolerance": self.guard_tolerance,
        }
        if task == "regression":
            chosen |= {k: v for k, v in REGRESSION_POLICY.items() if k not in self.model_fields_set}
        known = metrics_for(task)
        named = [("promotion_metric", chosen["promotion_metric"])]
        named += [("guard_metrics", guard) for guard in chosen["guard_metrics"]]
        for field, metric in named:
            if metric not in known:
                raise PlatformError(
                    f"MLOPS_{field.upper()} names {metric!r}, which is not a metric of a {task} "
                    f"job: choose from {', '.join(known)}"
                )
        return PromotionPolicy(
            metric=chosen["promotion_metric"],
            margin=self.promotion_margin,
            guards=tuple(chosen["guard_metrics"]),
            tolerance=chosen["guard_tolerance"],
            test=self.promotion_test,
        )

    def allowed_output_roots(self) -> list[str]:
        return list(self.output_roots) or [
            str(Path.cwd()),
            str(self.home_dir),
            self.resolved_artifact_uri,
        ]

    @property
    def artifacts_on_s3(self) -> bool:
        return self.resolved_artifact_uri.startswith("s3://")

    @property
    def artifact_root(self) -> Path:
        """Local folder of the artifact root (S3 roots are handled by the storage module)."""
        from tasks.data.storage import local_path

        return local_path(self.resolved_artifact_uri)

    @property
    def checkpoint_root(self) -> Path:
        """Per-epoch training backups: under a local artifact root; with an S3 root, a local
        cache under the home (Keras backs up to files)."""
        if self.artifacts_on_s3:
            return self.home_dir / "cache" / "checkpoints"
        return self.artifact_root / "checkpoints"

    def prepare(self) -> None:
        """Create the home and set the process variables the libraries read (`PROCESS_DEFAULTS`,
        S3's endpoint, the Prefect API of `mlops up`); `load_settings` calls it."""
        self.home_dir.mkdir(parents=True, exist_ok=True)
        if not self.artifacts_on_s3:
            self.artifact_root.mkdir(parents=True, exist_ok=True)
        if self.s3_endpoint_url:  # one endpoint for MLflow's S3 client and ours
            os.environ["MLFLOW_S3_ENDPOINT_URL"] = self.s3_endpoint_url
            os.environ["AWS_ENDPOINT_URL_S3"] = self.s3_endpoint_url
        os.environ.setdefault("PREFECT_HOME", str(self.home_dir / "prefect"))
        _apply_process_defaults()
        self.install_redaction()
        if self.prefect_api_url is None and (running := self.running_prefect_api()):
            os.environ["PREFECT_API_URL"] = running  # spare the start-up of a server

    @property
    def resolved_prefect_api_url(self) -> str | None:
        """The Prefect API commands talk to: PREFECT_API_URL, else the server of `mlops up`;
        None when there is neither (a command then starts one of its own)."""
        return self.prefect_api_url or self.running_prefect_api()

    def results_signing_key(self) -> bytes:
        """The key that signs persisted results: MLOPS_RESULTS_KEY, else one made once under
        the home, readable by its owner alone (mode 0600)."""
        if self.results_key is not None:
            return self.results_key.get_secret_value().encode()
        path = self.home_dir / "results.key"
        if not path.exists():
            self.home_dir.mkdir(parents=True, exist_ok=True)
            made = path.with_name(f".results.key.{os.getpid()}")
            descriptor = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:
                os.link(made, path)  # whole, or another process's key stands
            except FileExistsError:
                pass
            finally:
                made.unlink()
        return path.read_bytes().strip()

    def use_prefect_api(self, url: str) -> None:
        """Point this process's Prefect client at ``url`` (read when Prefect is imported)."""
        self.prefect_api_url = url
        os.environ["PREFECT_API_URL"] = url

    def subprocess_env(self, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
        """This process's environment for a child process, less ``drop``, plus ``extra``."""
        env = {name: value for name, value in os.environ.items() if name not in drop}
        return {**env, **extra}

    def secrets(self) -> list[str]:
        """Values that must never reach logs, params, tags or artifacts."""
        held = (
            self.aws_secret_access_key,
            self.aws_session_token,
            self.mlflow_tracking_password,
            self.mlflow_tracking_token,
            self.prefect_api_key,
            self.prefect_api_auth_string,
            self.results_key,
            self.notify_url,
        )
        return [s.get_secret_value() for s in held if s is not None and s.get_secret_value()]

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text

    def install_redaction(self) -> None:
        """Mask secrets in every log record any handler writes (console, Prefect's API); the
        secrets of these settings replace any masked before."""
        install_redactor(self.redact if self.secrets() else None)

    def running_prefect_api(self) -> str | None:
        """The Prefect API that `mlops up` started for this home, if it still answers."""
        import json
        import urllib.request

        try:
            url = json.loads(self.local_servers_file.read_text())["prefect_api_url"]
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                return url if response.status == 200 else None
        except (OSError, ValueError, KeyError):
            return None


# Variables the libraries read, set (unless already set) before any of them is imported.
PROCESS_DEFAULTS = {
    # A closed network must not make Prefect log telemetry errors.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # OpenMP threads that spin while waiting starve each other when two jobs share the cores
    # (see docs/decisions.md).
    "OMP_WAIT_POLICY": "PASSIVE",
    "GIT_PYTHON_REFRESH": "quiet",
    # Prefect gives a command's own API server 20 s to start; on two busy cores it can take
    # longer, and the command then fails before any work.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow's HTTP client retries 7 times with doubling waits (minutes); bounded, an
    # unreachable tracking server fails the run in seconds, with its address.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "tasks,flows",
}


@cache
def _apply_process_defaults() -> None:
    """`PROCESS_DEFAULTS`, once per process, where the environment does not set them."""
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)


def load_settings() -> Settings:
    """The settings of this process, read from the environment, with the home created and the
    libraries' variables set: what every entry point (a command, a flow) calls first."""
    settings = Settings()
    settings.prepare()
    return settings
