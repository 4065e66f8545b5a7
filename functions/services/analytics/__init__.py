"""BiasCorrectedAnalytics as a service: fraud flags, immutable analyses, replay."""
