"""The MLflow accounts of the production stack, made (or brought back in line) at stack start.

Run once after the tracking server is up, as its admin; running it again changes nothing but
passwords that changed in infra/stack.env. Standard library only, so any Python image runs it
(compose: the `mlflow-accounts` service; Kubernetes: the `mlflow-accounts` Job).

- the training account (MLFLOW_TRAINING_USERNAME / _PASSWORD), the one the Prefect workers
  log and register as: EDIT on the experiment of each model in TRAINED_MODELS (runs, metrics,
  logged models) and MANAGE on its registered model (versions, tags, aliases, and deleting
  the half-made version of a failed registration, which EDIT does not allow);
- the reviewer account (MLFLOW_REVIEWER_USERNAME / _PASSWORD): READ, the server's
  default_permission, granted explicitly as well;
- the admin account (MLFLOW_ADMIN_USERNAME / _PASSWORD) is the server's own: MLflow creates it
  on its first start; this script only logs in with it.

The experiment and registered model are made here, as the admin, when missing: the experiment
with the artifact location the platform gives it (MLOPS_ARTIFACT_URI/mlflow/<model>), so that
the training account holds exactly the grants above, not the MANAGE MLflow gives a creator.
No password is printed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

EDIT, MANAGE, READ = "EDIT", "MANAGE", "READ"


class AccountsError(RuntimeError):
    """A request the server refused; the message names the request, never a password."""


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise AccountsError(f"{name} is not set (set it in infra/stack.env)")
    return value


class Server:
    """MLflow's REST API, as one user."""

    def __init__(self, uri: str, username: str, password: str) -> None:
        self.uri = uri.rstrip("/")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None, **query: str) -> dict | None:
        """The response's JSON; None when the resource does not exist (404)."""
        url = f"{self.uri}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode() or "{}"
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            detail = exc.read().decode(errors="replace")[:300]
            if exc.code == 401:
                detail = "wrong user name or password"
            raise AccountsError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        return json.loads(text)


def wait_until_up(uri: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5):
                return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                why = f"MLflow at {uri} did not answer in {seconds:.0f} s: {exc}"
                raise AccountsError(why) from None
            time.sleep(2)


def ensure_user(admin: Server, username: str, password: str) -> None:
    """The user exists with this password and is not an admin."""
    found = admin.call("GET", "/api/2.0/mlflow/users/get", username=username)
    if found is None:
        admin.call(
            "POST", "/api/2.0/mlflow/users/create", {"username": username, "password": password}
        )
        print(f"created user {username}")
        return
    admin.call(
        "PATCH",
        "/api/2.0/mlflow/users/update-password",
        {"username": username, "password": password},
    )
    if found["user"].get("is_admin"):
        admin.call(
            "PATCH", "/api/2.0/mlflow/users/update-admin", {"username": username, "is_admin": False}
        )
        print(f"user {username}: admin rights removed")
    print(f"user {username}: password set")


def ensure_experiment(admin: Server, name: str, artifact_root: str) -> str:
    found = admin.call("GET", "/api/2.0/mlflow/experiments/get-by-name", experiment_name=name)
    if found is not None:
        return found["experiment"]["experiment_id"]
    location = (
        f"{artifact_root.rstrip('/')}/mlflow/{name}"  # as tasks/registry/tracking.py makes it
    )
    made = admin.call(
        "POST", "/api/2.0/mlflow/experiments/create", {"name": name, "artifact_location": location}
    )
    print(f"created experiment {name} ({location})")
    return made["experiment_id"]


def ensure_registered_model(admin: Server, name: str) -> None:
    if admin.call("GET", "/api/2.0/mlflow/registered-models/get", name=name) is not None:
        return
    description = (
        f"Model trained by the mlops training flow ({name})."  # as tasks/registry/versions.py
    )
    admin.call(
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        {"name": name, "description": description},
    )
    print(f"created registered model {name}")


def grant(admin: Server, username: str, resource_type: str, resource_id: str, level: str) -> None:
    """Exactly ``level`` for ``username`` on the resource (an earlier grant is replaced)."""
    target = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
    try:
        admin.call(
            "POST", "/api/3.0/mlflow/users/permissions/grant", {**target, "permission": level}
        )
    except AccountsError as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
        admin.call("POST", "/api/3.0/mlflow/users/permissions/revoke", target)
        admin.call(
            "POST", "/api/3.0/mlflow/users/permissions/grant", {**target, "permission": level}
        )
    print(f"{username}: {level} on {resource_type} {resource_id}")


def main() -> None:
    uri = required("MLFLOW_TRACKING_URI")
    wait_until_up(uri, float(os.environ.get("MLFLOW_ACCOUNTS_WAIT_SECONDS", "180")))
    admin = Server(uri, required("MLFLOW_ADMIN_USERNAME"), required("MLFLOW_ADMIN_PASSWORD"))
    try:
        admin.call("GET", "/api/2.0/mlflow/users/current")
    except AccountsError as exc:
        raise AccountsError(
            f"cannot log in as the MLflow admin ({exc}); MLflow sets the admin password on its "
            "first start only: a later change in stack.env needs the update-password API"
        ) from None
    training = required("MLFLOW_TRAINING_USERNAME")
    reviewer = required("MLFLOW_REVIEWER_USERNAME")
    if len({training, reviewer, required("MLFLOW_ADMIN_USERNAME")}) < 3:
        raise AccountsError("the admin, training and reviewer accounts need three different names")
    ensure_user(admin, training, required("MLFLOW_TRAINING_PASSWORD"))
    ensure_user(admin, reviewer, required("MLFLOW_REVIEWER_PASSWORD"))
    artifact_root = required("MLOPS_ARTIFACT_URI")
    models = [m for m in os.environ.get("TRAINED_MODELS", "digits").replace(",", " ").split() if m]
    for model in models:
        experiment = ensure_experiment(admin, model, artifact_root)
        ensure_registered_model(admin, model)
        grant(admin, training, "experiment", experiment, EDIT)
        grant(admin, training, "registered_model", model, MANAGE)
        grant(admin, reviewer, "experiment", experiment, READ)
        grant(admin, reviewer, "registered_model", model, READ)


if __name__ == "__main__":
    try:
        main()
    except AccountsError as exc:
        sys.exit(f"mlflow-accounts: {exc}")
