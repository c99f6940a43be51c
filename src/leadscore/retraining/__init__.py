"""Scheduled retraining: a challenger trained on the latest data, judged by the gate and the retraining rules.

- :mod:`~leadscore.retraining.rules`: the gate as it is, then a maximum champion age and a drift rule, each
  decision naming its rule and figures;
- :mod:`~leadscore.retraining.lock`: the store's lease, so one service at a time retrains, once per slot;
- :mod:`~leadscore.retraining.job`: one retraining (:func:`retrain`) and a schedule's tick (:func:`run_due`);
- :mod:`~leadscore.retraining.schedule`: the service's APScheduler job;
- :mod:`~leadscore.retraining.replay`: a simulated history replayed with retraining every few days, and the
  realised AUC of each champion against the best version's.
"""
