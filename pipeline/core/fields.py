"""Value types shared by params.yaml's sections (pipeline.config) and the models' constructor
arguments (models.registry): numbers with their allowed range, and switches.

Numbers given as strings are read as numbers (PyYAML reads `1e-3` as a string), but YAML's
true/false never count as numbers, and a switch takes only true or false.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, StrictBool


def _not_bool(value):
    """YAML's true/false are no numbers (pydantic would read them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError("a number is needed, not true/false")
    return value


NotBool = BeforeValidator(_not_bool)
PositiveInt = Annotated[int, Field(ge=1), NotBool]
Count = Annotated[int, Field(ge=0), NotBool]
PositiveFloat = Annotated[float, Field(gt=0), NotBool]
NonNegativeFloat = Annotated[float, Field(ge=0), NotBool]
Share = Annotated[float, Field(ge=0, lt=1), NotBool]
Probability = Annotated[float, Field(ge=0, le=1), NotBool]
Switch = StrictBool
