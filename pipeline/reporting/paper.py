"""The papers' printed numbers (paper_values.yaml, typed from ../shared/papers) and the arithmetic
the report does on them: rows by column, and notes where a paper's numbers disagree with
themselves (a printed MAE that is not the mean of its angles, a row printed differently in two
tables)."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.core.angles import ANGLES
from pipeline.core.errors import DataError

PAPER_VALUES = Path(__file__).parent / "paper_values.yaml"
SLACK = 0.01  # printed MAE vs mean of printed angles: differences within rounding plus this are not flagged


def load_paper_values(path: Path = PAPER_VALUES) -> dict:
    return yaml.safe_load(Path(path).read_text())


def fmt_paper(v) -> str:
    """A paper's number as typed (shortest form: 4.50 typed shows as 4.5)."""
    return "-" if v is None else f"{v:g}"


def paper_table(paper: dict, key: str) -> dict:
    """A table of paper_values.yaml with its rows as {method: {(family, metric): value}}."""
    table = paper[key]
    order = [(family, metric) for family, metrics in table["columns"].items() for metric in metrics]
    rows = {}
    for method, values in table["rows"].items():
        if len(values) != len(order):
            raise DataError(f"{PAPER_VALUES}: {key}.{method} has {len(values)} numbers, the columns need {len(order)}")
        rows[method] = dict(zip(order, values))
    return {**table, "values": rows}


def _half_unit(v: float) -> float:
    """Half a unit of the last printed digit (from the shortest repr, so 4.50 typed counts as 4.5)."""
    text = repr(float(v))
    return 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text and not text.endswith(".0") else 0)


def paper_notes(paper: dict, key: str) -> list[str]:
    """Typed notes of a table plus the ones computed here: printed MAE versus the mean of the
    printed angles (beyond what rounding explains), and rows printed differently elsewhere."""
    table = paper_table(paper, key)
    notes = list(table.get("notes", []))
    for family in table["columns"]:
        for method, v in table["values"].items():
            angles = [v.get((family, a)) for a in ANGLES]
            mae = v.get((family, "mae"))
            if mae is None or None in angles:
                continue
            mean = sum(angles) / 3
            if abs(mean - mae) > _half_unit(mae) + sum(_half_unit(a) for a in angles) / 3 + SLACK:
                notes.append(f"{method}: the printed MAE {mae:g} is not the mean of the printed angles ({mean:.2f}).")
    other_key = table.get("compare_with")
    if other_key:
        other = paper_table(paper, other_key)
        for method, v in table["values"].items():
            w = other["values"].get(method)
            if w is None:
                continue
            differ = [k for k in v if k in w and v[k] != w[k]]
            if differ:
                mine = ", ".join(f"{k[1]} {v[k]:g}" for k in differ)
                theirs = ", ".join(f"{k[1]} {w[k]:g}" for k in differ)
                notes.append(f"{method}: {table['paper']} {table['label']} prints {mine}; {other['paper']} {other['label']} prints {theirs}. "
                             "Both are shown as printed.")
    return notes

