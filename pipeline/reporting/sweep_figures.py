"""The sweeps' figures, drawn from results.csv rows: (table, study folder, sweep) -> PNG path.

Test-set panels take only COMPLETE trials (a pruned trial is never evaluated)."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def _panels(table: pd.DataFrame) -> list[str]:
    """'val' then every test set with a `<test set>_mae` column."""
    return ["val"] + [c[: -len("_mae")] for c in table.columns if c.endswith("_mae") and c != "val_mae"]


def _title(panel: str) -> str:
    return "validation" if panel == "val" else panel


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def heatmap(table: pd.DataFrame, folder: Path, sweep) -> Path:
    """MAE per cell of a two-key grid, one panel per test set and one for validation. A pruned
    cell shows, in the validation panel, its last validation MAE marked "(pruned, epoch k)"; test
    panels hold only cells trained to the end (a pruned trial is never tested)."""
    x, y = (sweep.param(k) for k in sweep.grid[:2])
    done = table[table.state == "COMPLETE"]
    pruned = table[table.state == "PRUNED"]
    panels = _panels(table)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        shown = table[table.state.isin(["COMPLETE", "PRUNED"])] if panel == "val" else done
        layout = dict(index=sorted(table[y].unique()), columns=sorted(table[x].unique()))
        cells = shown.pivot_table(index=y, columns=x, values=f"{panel}_mae").reindex(**layout)
        labels = cells.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
        if panel == "val":
            for _, r in pruned.iterrows():
                labels.loc[r[y], r[x]] = f"{r.val_mae:.2f}\n(pruned, ep {int(r.epochs)})"
        sns.heatmap(cells, annot=labels.to_numpy(), fmt="", cmap="viridis_r", ax=ax, cbar_kws={"label": "MAE (deg)"},
                    annot_kws={"fontsize": 7})
        ax.invert_yaxis()
        ax.set_title(f"{_title(panel)} MAE" + (" (blank: pruned)" if panel != "val" and len(pruned) else ""))
    return _save(fig, folder / "heatmap.png")


def scatter(table: pd.DataFrame, folder: Path, sweep) -> Path:
    """Validation MAE against each searched value; hollow markers are pruned trials (MAE so far)."""
    keys = [sweep.param(k) for k in sweep.ranges]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], keys):
        for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
            rows = table[table.state == state]
            ax.scatter(rows[key], rows.val_mae, marker=marker, label=state.lower(), alpha=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(key)
    axes[0][0].set_ylabel("validation MAE (deg)")
    axes[0][0].legend()
    return _save(fig, folder / "scatter.png")


def curves(table: pd.DataFrame, folder: Path, sweep) -> Path:
    """Criterion I: MAE against the grid value; Criterion II: share under each threshold, one
    curve per grid value, one panel per test set (from trials/<number>/criteria.json)."""
    key = sweep.param(sweep.grid[0])
    done = table[table.state == "COMPLETE"].sort_values(key)
    tests = _panels(table)[1:]
    fig, axes = plt.subplots(1, 1 + len(tests), figsize=(4.5 * (1 + len(tests)), 3.8), squeeze=False)
    for panel in _panels(table):
        axes[0][0].plot(done[key], done[f"{panel}_mae"], marker="o", label=_title(panel))
    axes[0][0].set(xlabel=key, ylabel="MAE (deg)", title="Criterion I")
    axes[0][0].legend()
    for ax, test in zip(axes[0][1:], tests):
        for _, row in done.iterrows():
            criteria = json.loads((folder / "trials" / str(row.number) / "criteria.json").read_text())[test]["criterion_2"]
            ax.plot(criteria["thresholds"], criteria["share"], label=f"{key} {row[key]:g}")
        ax.set(xlabel="threshold (deg)", ylabel="share of samples", title=f"Criterion II, {test}", ylim=(0, 1))
        ax.legend(fontsize=7)
    return _save(fig, folder / "curves.png")


def optuna_figures(study, folder: Path, params: list[str]) -> list[Path]:
    """Optuna's own views of a study, beside the paper's figure: the optimisation history, the
    parameters' importances (two or more searched values) and the contour of the first two (a
    grid of two keys, e.g. alpha x beta). Drawn from COMPLETE trials; none with fewer than two."""
    import optuna.visualization.matplotlib as ov
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(done) < 2:
        return []
    drawn = []

    def save(ax, name: str) -> None:
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        drawn.append(_save(fig, folder / name))

    save(ov.plot_optimization_history(study), "optuna_history.png")
    if len(params) >= 2:
        varied = [p for p in params if len({t.params.get(p) for t in done}) > 1]
        if len(varied) >= 2:
            save(ov.plot_param_importances(study, params=varied), "optuna_importances.png")
            save(ov.plot_contour(study, params=varied[:2]), "optuna_contour.png")
    return drawn
