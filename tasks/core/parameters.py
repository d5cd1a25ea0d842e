"""The training job's parameters that have bounds or choices, declared once: the `mlops`
options and the flows' signatures (the forms of the Prefect UI) both read them from here."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import Field

EPOCHS_MIN, EPOCHS_MAX = 1, 10_000
Epochs = Annotated[int, Field(ge=EPOCHS_MIN, le=EPOCHS_MAX)]
Seconds = Annotated[int, Field(ge=1)]

# What a training job does on drift from the champion's training data: the flow's parameter
# (a choice in the UI's form) and, with the same values, the command's option.
DriftMode = Literal["warn", "fail"]
DriftChoice = StrEnum("DriftChoice", {mode: mode for mode in get_args(DriftMode)})

# What a training job learns: inferred from the label (auto), or as the user says.
TaskChoice = Literal["auto", "classification", "regression"]
TaskOption = StrEnum("TaskOption", {task: task for task in get_args(TaskChoice)})

# A registered model's name: it ends up in URIs (models:/NAME@ALIAS) and experiment paths.
MODEL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
MODEL_NAME_RULE = "up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
ModelName = Annotated[str, Field(pattern=f"^{MODEL_NAME_PATTERN}$")]
