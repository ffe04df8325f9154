"""`monitor`'s and `canary`'s verdicts a script or an alert acts on: outcomes with exit codes, not user errors."""
from components.errors import Outcome


class Drift(Outcome):
    """The traffic moved away from the served model's training data (alerting: page someone)."""
    exit_code = 6


class NotEnoughTraffic(Outcome):
    """Too few logged requests in the window to judge (monitor.min_requests)."""
    exit_code = 7


class CanaryFails(Outcome):
    """`canary`: the canary answers the shadowed traffic worse than stable (rollout.* thresholds): drop it."""
    exit_code = 6
