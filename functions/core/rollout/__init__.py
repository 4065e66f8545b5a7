"""Progressive rollout, pure: the stage model and its validation (stages.py), the requirements a
stage must meet before the next one (requirements.py), the plan state and the transitions that
operators and the sweep may apply to it (plan.py), and the time-to-final projection (projection.py).
No Firestore here: services feed plain values in and persist what comes out."""
