"""MLflow's scoring server started before its model exists: the serve check starts this while
the job validates and trains, so the server's imports are done by the time the model is.

It imports what `mlflow models serve --env-manager local` imports, then reads one line from
stdin: the model's URI, host and port (JSON); an empty line, or stdin closed, ends it. Then it
does what that command does: downloads the model's artifacts and runs uvicorn with
`mlflow.pyfunc.scoring_server.app`, which loads the model from the path in its environment.
Run as a script (`python -P scoring_launcher.py`), not imported.
"""

import json
import os
import sys

import pandas  # noqa: F401  (every model's load needs it: imported while waiting)
import sklearn  # noqa: F401
import uvicorn
from mlflow.pyfunc import scoring_server
from mlflow.tracking.artifact_utils import _download_artifact_from_uri
from mlflow.utils.file_utils import path_to_local_file_uri


def main() -> None:
    line = sys.stdin.readline()
    if not line.strip():
        return
    request = json.loads(line)
    local = _download_artifact_from_uri(request["model_uri"])
    os.environ[scoring_server._SERVER_MODEL_PATH] = path_to_local_file_uri(local)
    uvicorn.run(
        "mlflow.pyfunc.scoring_server.app:app",
        host=request["host"],
        port=request["port"],
        workers=1,
    )


if __name__ == "__main__":
    main()
