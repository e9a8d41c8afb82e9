"""The autotuner: tasks, configuration spaces, search, measurement, logs, reports (see
docs/architecture.md, "How a model is tuned")."""
