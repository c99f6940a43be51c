"""The chosen model's calibration on the later period, side by side with a plain logistic regression's.

On data with time (a time column, rows in time order, CRM snapshots with cutoffs) the validation examples are the
latest period, and the world may have moved since the earlier one: UCI Bank Marketing's yes-rate goes from 6 % to
31 %. A calibration procedure that only holds when nothing moves would show it here. So every such run reports the
chosen model's calibration on that period next to the simplest honest alternative, a plain logistic regression
(scikit-learn's defaults on the same cleaned, imputed, one-hot encoded and standardised columns, no calibration
step) fitted on all the earlier examples that training may use, and scored on the very same later rows.

The pair is reported for three figures: expected calibration error (ECE), log loss and the calibration slope
(1 is calibrated; below 1 the predictions are spread too wide). Keys: ``later_<figure>`` and
``later_<figure>_logistic_baseline``, plus ``later_n``.

The later period is also where the choice among the candidates is made, so the chosen model's figures are those of
the best of several variants on it; the baseline is one model, fitted once.
"""

from __future__ import annotations

import numpy as np

from leadscore.model.candidates import plain_logistic_pipeline
from leadscore.model.metrics import calibration_slope, evaluate
from leadscore.model.splits import LabelledData

FIGURES: tuple[str, ...] = ("ece", "log_loss", "calibration_slope")
BASELINE_SUFFIX = "_logistic_baseline"


def later_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ECE, log loss and calibration slope of one set of predictions.

    Examples
    --------
    >>> import numpy as np
    >>> sorted(later_figures(np.array([0, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.6])))
    ['calibration_slope', 'ece', 'log_loss']
    """
    metrics = evaluate(y, p)
    return {"ece": metrics["ece"], "log_loss": metrics["log_loss"], "calibration_slope": calibration_slope(y, p)[0]}


def baseline_probabilities(earlier: LabelledData, later: LabelledData) -> np.ndarray:
    """The plain logistic regression fitted on ``earlier``, as probabilities for ``later``'s rows."""
    model = plain_logistic_pipeline(earlier.kinds).fit(earlier.X, earlier.y)
    return model.predict_proba(later.X)[:, 1]


def compare_later_period(y: np.ndarray, chosen: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """The ``later_*`` metric pairs: the chosen model's figures and the baseline's, on the same rows.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> pairs = compare_later_period(y, np.array([.2, .3, .7, .8, .1, .6]), np.full(6, 0.5))
    >>> pairs["later_log_loss"] < pairs["later_log_loss_logistic_baseline"], pairs["later_n"]
    (True, 6.0)
    """
    ours, theirs = later_figures(y, chosen), later_figures(y, baseline)
    out = {"later_n": float(len(y))}
    for figure in FIGURES:
        out[f"later_{figure}"] = ours[figure]
        out[f"later_{figure}{BASELINE_SUFFIX}"] = theirs[figure]
    return out
