"""The training run's pictures: ROC, calibration, cumulative gain and lift, and what drives the model.

Each function draws on the validation period of a :class:`~leadscore.model.training.TrainingResult` and writes one
PNG (matplotlib's Agg backend: no display needed). :func:`save_plots` writes them all and returns the paths, for
MLflow to log as artifacts.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from leadscore.model.metrics import calibration_table, cumulative_gain  # noqa: E402

MAX_FEATURES_SHOWN = 20
IMPORTANCE_SAMPLE = 5000


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _shown(result) -> list:
    """The calibrated variants (and the chosen one), to keep the pictures readable."""
    return [r for r in result.results if r.calibration != "none" or r is result.chosen]


def roc_plot(result, path: Path) -> Path:
    """ROC curves of the candidates on the validation period."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    y = result.holdout.y
    for r in _shown(result):
        fpr, tpr, _ = roc_curve(y, r.probabilities)
        ax.plot(fpr, tpr, lw=2.2 if r is result.chosen else 1.2, label=f"{r.label}  AUC {r.metrics['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the validation period")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def calibration_plot(result, path: Path) -> Path:
    """Predicted against observed conversion rate by decile, for every variant (calibrated or not)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    y = result.holdout.y
    top = 0.0
    for r in result.results:
        table = calibration_table(y, r.probabilities)
        top = max(top, table["mean_predicted"].max(), table["observed_rate"].max())
        style = "-" if r.calibration != "none" else "--"
        ax.plot(
            table["mean_predicted"],
            table["observed_rate"],
            style,
            marker="o",
            ms=3,
            lw=2.2 if r is result.chosen else 1.0,
            label=f"{r.label}  ECE {r.metrics['ece']:.3f}",
        )
    ax.plot([0, top], [0, top], ls=":", color="grey")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed conversion rate",
        title="Calibration by decile (validation period)",
    )
    ax.legend(fontsize=6)
    return _save(fig, path)


def gain_plot(result, path: Path) -> Path:
    """Cumulative gain (share of conversions found) and lift for the chosen model."""
    y = result.holdout.y
    gain = cumulative_gain(y, result.chosen.probabilities)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.plot(gain["worked"], gain["captured"], label=result.chosen.label)
    left.plot([0, 1], [0, 1], ls=":", color="grey", label="random order")
    left.set(xlabel="share of leads worked, best first", ylabel="share of conversions found", title="Cumulative gain")
    left.legend(fontsize=8)
    worked = gain["worked"].to_numpy()[1:]
    lift = gain["captured"].to_numpy()[1:] / worked
    right.plot(worked, lift)
    right.axhline(1, ls=":", color="grey")
    right.set(xlabel="share of leads worked, best first", ylabel="lift", title="Lift", ylim=(0, None))
    return _save(fig, path)


def importance_plot(result, path: Path) -> Path:
    """Mean absolute contribution of each feature to the chosen model's log-odds on the validation period."""
    from leadscore.model.explain import explain

    holdout = result.holdout
    rows = np.arange(len(holdout))
    if len(rows) > IMPORTANCE_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(rows, IMPORTANCE_SAMPLE, replace=False))
    contributions = explain(result.chosen.model, holdout.X.iloc[rows])
    importance = contributions.values.abs().mean().sort_values(ascending=True).tail(MAX_FEATURES_SHOWN)
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(importance) + 1.2))
    ax.barh(importance.index, importance.to_numpy())
    ax.set(xlabel="mean |contribution to log-odds|", title=f"What drives {result.chosen.label}")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def save_plots(result, out_dir: str | Path) -> list[Path]:
    """Write roc.png, calibration.png, gain_lift.png and importance.png to ``out_dir``; [] for a cold start.

    Examples
    --------
    >>> paths = save_plots(result, "/tmp/plots")  # doctest: +SKIP
    >>> [p.name for p in paths]  # doctest: +SKIP
    ['roc.png', 'calibration.png', 'gain_lift.png', 'importance.png']
    """
    if result.chosen is None or result.holdout is None:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        roc_plot(result, out / "roc.png"),
        calibration_plot(result, out / "calibration.png"),
        gain_plot(result, out / "gain_lift.png"),
        importance_plot(result, out / "importance.png"),
    ]
