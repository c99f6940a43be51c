"""Keeping the model honest in production: its promises matched with outcomes, and drift from its training data.

:mod:`~leadscore.monitoring.outcomes` matches the stored scores with what happened (reliability by band and
grade, AUC, log loss, ECE, per model version and week); :mod:`~leadscore.monitoring.drift` compares recent
weeks with the training reference (:mod:`~leadscore.monitoring.reference`); :mod:`~leadscore.monitoring.recent`
judges the model in use on the latest period with known outcomes (the model page).
"""
