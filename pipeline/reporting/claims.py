"""The papers' comparative claims (claims.yaml), loaded and checked.

    claims = load_claims(experiments=params.experiments, studies=params.sweeps)
    for c in claims:
        c.id, c.kind, c.better, c.worse, c.test_sets, c.paired, c.metric
        c.printed_difference      # the paper's better - worse, or None (then c.printed_status says why)

A problem in the file (an unknown field, an experiment params.yaml does not define, a printed
difference that is not better - worse) stops the load with one DataError line naming the claim.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.angles import ANGLES
from pipeline.core.errors import DataError

CLAIMS = Path(__file__).parent / "claims.yaml"
TEST_SETS = ("aflw2000", "biwi", "biwi_npz", "biwi_frames")
PAPERS = ("DADL", "Bernoulli heatmap")
NO_NUMBERS = ("figure only", "not in paper", "not attributable")
ROUNDING = 0.006  # printed difference vs printed better - worse (two decimals)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Printed(_Strict):
    better: float
    worse: float
    difference: float

    @model_validator(mode="after")
    def _difference(self):
        if abs((self.better - self.worse) - self.difference) > ROUNDING:
            raise ValueError(f"printed.difference: {self.difference} is not better - worse ({self.better} - {self.worse} = "
                             f"{self.better - self.worse:.2f})")
        return self


class Claim(_Strict):
    """One claim of claims.yaml (the file's header explains every field)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    paper: Literal["DADL", "Bernoulli heatmap"]
    source: str
    claim: str
    kind: Literal["mae", "ordering", "sweep"] = "mae"
    better: str | dict[str, float] | None = None
    worse: str | dict[str, float] | None = None
    test_set: str | dict[Literal["better", "worse"], str] | None = None
    paired: bool = True
    metric: Literal["yaw", "pitch", "roll", "mae"] = "mae"
    printed: Printed | Literal["figure only", "not in paper", "not attributable"] | dict[str, dict[str, float]]
    study: str | None = None  # kind sweep
    result: str | None = None  # kind ordering: the results file, relative to results/
    quantity: str | None = None  # kind ordering: where in it (<angle> stands for each angle)
    order: tuple[str, ...] | None = None  # kind ordering: largest first
    notes: list[str] = []

    @field_validator("notes", mode="before")
    @classmethod
    def _notes(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _by_kind(self):
        need = {"mae": ("better", "worse", "test_set"), "sweep": ("better", "worse", "test_set", "study"),
                "ordering": ("result", "quantity", "order")}[self.kind]
        for key in need:
            if getattr(self, key) is None:
                raise ValueError(f"{key}: missing (kind {self.kind} needs {', '.join(need)})")
        allowed = {"mae": {"study", "result", "quantity", "order"}, "sweep": {"result", "quantity", "order"},
                   "ordering": {"better", "worse", "test_set", "study"}}[self.kind]
        for key in allowed:
            if getattr(self, key) is not None:
                raise ValueError(f"{key}: not a field of kind {self.kind}")
        if self.kind == "mae" and not (isinstance(self.better, str) and isinstance(self.worse, str)):
            raise ValueError("better/worse: kind mae compares two experiments (names)")
        if self.kind == "sweep" and not (isinstance(self.better, dict) and isinstance(self.worse, dict)):
            raise ValueError("better/worse: kind sweep compares two cells, e.g. {alpha: 3.0, beta: 3.0}")
        if self.kind == "ordering":
            if sorted(self.order) != sorted(ANGLES):
                raise ValueError(f"order: must list yaw, pitch and roll once each, got {list(self.order)}")
            if not isinstance(self.printed, dict):
                raise ValueError("printed: kind ordering gives the paper's values per angle, e.g. {aflw2000: {yaw: 1.0, ...}}")
            for label, values in self.printed.items():
                if sorted(values) != sorted(ANGLES):
                    raise ValueError(f"printed.{label}: give yaw, pitch and roll")
        elif isinstance(self.printed, dict):
            raise ValueError("printed: give {better, worse, difference} or one of " + ", ".join(NO_NUMBERS))
        if self.better is not None and self.better == self.worse:
            raise ValueError("better/worse: the same on both sides")
        for name in self.test_sets:
            if name not in TEST_SETS:
                raise ValueError(f"test_set: unknown test set {name!r}; use one of {', '.join(TEST_SETS)}")
        return self

    @property
    def test_sets(self) -> tuple[str, ...]:
        """(better's, worse's) test set; () for an ordering."""
        if self.test_set is None:
            return ()
        if isinstance(self.test_set, str):
            return (self.test_set, self.test_set)
        return (self.test_set["better"], self.test_set["worse"])

    @property
    def experiments(self) -> tuple[str, ...]:
        return (self.better, self.worse) if self.kind == "mae" else ()

    @property
    def printed_status(self) -> str:
        """"printed" when the paper gives both numbers, else why it does not."""
        return "printed" if isinstance(self.printed, (Printed, dict)) else self.printed

    @property
    def printed_better(self) -> float | None:
        return self.printed.better if isinstance(self.printed, Printed) else None

    @property
    def printed_worse(self) -> float | None:
        return self.printed.worse if isinstance(self.printed, Printed) else None

    @property
    def printed_difference(self) -> float | None:
        return self.printed.difference if isinstance(self.printed, Printed) else None


class _File(_Strict):
    claims: list[dict]


def _problem(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-", "literal[", "str", "dict[", "Printed")))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown field; remove it or fix its spelling"
    if first["type"] == "missing":
        return f"{loc}: missing"
    if first["type"] == "value_error" and re.match(r"^[\w./]+:", message):
        return message
    return f"{loc}: {message}, got {first.get('input')!r}"


def load_claims(path: Path = CLAIMS, experiments: Iterable[str] | None = None, studies: Iterable[str] | None = None) -> list[Claim]:
    """The claims of `path`, checked. experiments / studies: the names params.yaml defines
    (`experiments:` / `sweeps:`); a claim naming another is refused. None skips that check."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: not readable YAML ({exc.__class__.__name__}); fix the file (git diff shows what changed)") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("claims"), list) or set(raw) != {"claims"}:
        raise DataError(f"{path}: must hold one key, claims: a list of claims")
    known = set(experiments) if experiments is not None else None
    known_studies = set(studies) if studies is not None else None
    claims, seen = [], set()
    for i, entry in enumerate(raw["claims"]):
        cid = entry.get("id", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
        if not isinstance(entry, dict):
            raise DataError(f"{path} claim {cid}: not a mapping of fields")
        try:
            claim = Claim.model_validate(entry)
        except ValidationError as exc:
            raise DataError(f"{path} claim {cid}: {_problem(exc)}") from None
        if claim.id in seen:
            raise DataError(f"{path} claim {claim.id}: id used twice; give each claim its own id")
        seen.add(claim.id)
        for name in claim.experiments:
            if known is not None and name not in known:
                raise DataError(f"{path} claim {claim.id}: unknown experiment {name!r}; use one of params.yaml experiments "
                                f"({', '.join(sorted(known))})")
        if claim.kind == "sweep" and known_studies is not None and claim.study not in known_studies:
            raise DataError(f"{path} claim {claim.id}: unknown study {claim.study!r}; use one of params.yaml sweeps "
                            f"({', '.join(sorted(known_studies))})")
        claims.append(claim)
    return claims
