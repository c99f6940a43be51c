"""The trained model against the simulator's oracle, on the same time-ordered validation period.

The simulator knows each open lead's true probability of being won within 90 days at every weekly cutoff
(``SimulatedCrm.truth``). No model can rank or predict better than it on average, so it is the yardstick:
``leadscore train`` on a small simulated CRM (the seed fixed) must come within stated margins of it on the very
snapshots it is validated on. ``benchmarks/model_quality.py`` does the same at full size.

The margins come from measurement (10,000 leads over 15 months, seeds 1 and 2, every candidate): the chosen model's
ROC AUC was 0.021 to 0.029 below the oracle's and its log loss 0.017 to 0.018 above; its ECE was at most 0.008 above
the oracle's own (0.011 to 0.015 here, which is sampling error: the truth is calibrated by construction), and its
mean prediction 3 % to 13 % off the base rate. Planted regressions fail: training without the lead attributes
(source, segment, company size, country, industry, campaign: the strongest family) loses 0.058 to 0.061 AUC and
0.033 to 0.034 of log loss; probabilities shifted by +0.5 on the log-odds scale, or stretched 1.5x and shifted by
+1, raise the ECE to 0.028 to 0.040 and 0.036 to 0.038 (the first also puts the mean prediction 23 % above the base
rate on seed 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.model.metrics import evaluate
from leadscore.model.training import train, training_data_from_crm
from leadscore.simulation.simulator import simulate

LEADS, REPS, MONTHS, SEED = 10_000, 6, 15, 1
AUC_MARGIN = 0.04  # the oracle's ROC AUC minus the model's, at most
LOG_LOSS_MARGIN = 0.025  # the model's log loss minus the oracle's, at most
ECE_MARGIN = 0.01  # the model's expected calibration error minus the oracle's, at most
MEAN_SHARE = 0.2  # the mean predicted probability against the base rate, at most this share of it apart


def _days(stamps: pd.Series) -> np.ndarray:
    return ((pd.to_datetime(stamps, utc=True) - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)).to_numpy()


@pytest.fixture(scope="module")
def validated() -> dict:
    """The chosen model's and the oracle's metrics on the validation snapshots of one ``train`` run."""
    sim = simulate(n_leads=LEADS, n_reps=REPS, months=MONTHS, seed=SEED)
    result = train(training_data_from_crm(sim.data))
    holdout = result.holdout
    truth = sim.truth.assign(t=_days(sim.truth["cutoff"]))[["lead_id", "t", "propensity"]]
    keys = pd.DataFrame({"lead_id": holdout.ids.astype(str), "t": holdout.times})
    oracle = keys.merge(truth, on=["lead_id", "t"], how="left")["propensity"].to_numpy()
    assert not np.isnan(oracle).any(), "every validation snapshot has its simulator truth"
    p = result.chosen.probabilities
    return {
        "y": holdout.y,
        "p": p,
        "model": evaluate(holdout.y, p),
        "oracle": evaluate(holdout.y, oracle),
        "chosen": result.chosen.label,
        "later": result.later_period,
    }


def test_the_validation_period_is_large_enough_to_judge(validated):
    y = validated["y"]
    assert len(y) > 7_000 and y.sum() > 700  # 8,306 snapshots and 935 wins measured


def test_the_model_ranks_almost_as_well_as_the_oracle(validated):
    model, oracle = validated["model"]["roc_auc"], validated["oracle"]["roc_auc"]
    assert oracle - AUC_MARGIN <= model <= oracle, (validated["chosen"], model, oracle)


def test_the_models_log_loss_is_close_to_the_oracles(validated):
    model, oracle = validated["model"]["log_loss"], validated["oracle"]["log_loss"]
    assert oracle <= model <= oracle + LOG_LOSS_MARGIN, (validated["chosen"], model, oracle)


def test_the_model_is_calibrated_within_the_oracles_sampling_error(validated):
    model, oracle = validated["model"], validated["oracle"]
    assert model["ece"] <= oracle["ece"] + ECE_MARGIN, (validated["chosen"], model["ece"], oracle["ece"])
    # Calibration in the large is not within sampling error here (0.098 predicted against 0.113 won: 5.0 standard
    # errors low, for a reason not yet established), so the bound is a share of the base rate.
    p, y = validated["p"], validated["y"]
    assert abs(p.mean() - y.mean()) <= MEAN_SHARE * y.mean(), (p.mean(), y.mean())


# --- Calibration that survives a shift: the later period against a plain logistic regression -------------------
#
# On data with time, the chosen model's calibration on the later period (the validation period) must be at least
# as good as that of a plain logistic regression fitted on all the earlier examples training may use
# (leadscore.model.later_period), within sampling error. The tolerances are about two standard errors of the
# paired difference (the same rows scored by both), measured by bootstrap over the later rows (200 resamples,
# benchmarks/model_quality.py's later_pair): on this simulation (seed 1) 0.0030 for ECE and 0.0019 for log loss
# (0.0026 to 0.0032 and 0.0009 to 0.0023 over seeds 1 to 3); on UCI's 8,238 later rows 0.0037 and 0.0048, where
# the same tolerances are stricter than two standard errors. Measured on seed 1: ECE 0.0187 against 0.0181, log
# loss 0.2705 against 0.2738.
LATER_ECE_TOLERANCE = 0.006
LATER_LOG_LOSS_TOLERANCE = 0.004


def _assert_later_period_at_least_as_good(later: dict, label: str) -> None:
    assert later["later_n"] > 5_000, later
    for figure, tolerance in (("ece", LATER_ECE_TOLERANCE), ("log_loss", LATER_LOG_LOSS_TOLERANCE)):
        ours, baseline = later[f"later_{figure}"], later[f"later_{figure}_logistic_baseline"]
        assert ours <= baseline + tolerance, (label, figure, ours, baseline)


def test_the_later_periods_calibration_is_at_least_a_plain_logistic_regressions(validated):
    _assert_later_period_at_least_as_good(validated["later"], validated["chosen"])


def test_the_later_period_check_catches_a_model_that_does_not_survive_the_shift(validated):
    # The same check on the chosen model's probabilities moved by +1 and stretched 1.5 times on the log-odds scale
    # (what a calibration fitted on a period with more conversions and sharper contrasts would do) fails it.
    from scipy.special import expit, logit

    from leadscore.model.later_period import later_figures

    later = validated["later"]
    shifted = later_figures(validated["y"], expit(1.5 * logit(validated["p"]) + 1.0))
    planted = {**later, **{f"later_{figure}": shifted[figure] for figure in ("ece", "log_loss")}}
    with pytest.raises(AssertionError):
        _assert_later_period_at_least_as_good(planted, "planted")


@pytest.fixture(scope="module")
def uci_later() -> dict:
    from leadscore.data.public import missing_message, shared_data_dir
    from leadscore.model.flat_table import load_flat_table

    missing = missing_message("uci_bank_marketing")
    if missing:
        pytest.skip(f"UCI Bank Marketing is not there, so its later period is not checked: {missing}")
    path = shared_data_dir() / "uci_bank_marketing" / "bank-additional-full.csv"
    data = load_flat_table(path, "y", drop=["duration"], row_order_is_time=True)
    result = train(data, check_leakage=False)  # duration, the known leak, is dropped; the guard has its own tests
    return {"later": result.later_period, "chosen": result.chosen.label}


def test_on_uci_bank_the_later_periods_calibration_is_at_least_a_plain_logistic_regressions(uci_later):
    # Rows in time order, the last 20 % as the later period, where the yes-rate is 31 % against 6 % before.
    _assert_later_period_at_least_as_good(uci_later["later"], uci_later["chosen"])
