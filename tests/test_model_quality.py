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
