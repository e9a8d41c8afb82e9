"""Tuning: logs of measured schedules (the search itself is future work)."""
