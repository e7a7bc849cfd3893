"""MetricFlow beside semproxy: helper scripts run inside a separate MetricFlow venv."""
