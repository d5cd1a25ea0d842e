"""The training job's parameters that have bounds or choices, declared once: the `mlops`
options and the flows' signatures (the forms of the Prefect UI) both read them from here."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

EPOCHS_MIN, EPOCHS_MAX = 1, 10_000
Epochs = Annotated[int, Field(ge=EPOCHS_MIN, le=EPOCHS_MAX)]
Seconds = Annotated[int, Field(ge=1)]


class DriftMode(StrEnum):
    """What a training job does on drift from the champion's training data."""

    warn = "warn"
    fail = "fail"
