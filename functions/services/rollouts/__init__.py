"""ProgressiveRolloutController: plans (plans.py), the sweep's auto-progression (progression.py),
operator actions (actions.py), health (health.py); inputs.py is the only adapter that reads other
modules' data, store.py the only place that writes rollout state."""
