"""What an operator watches: Prometheus metrics (`prometheus`, `http_metrics`),
OpenTelemetry traces (`tracing`) and the log format (`log_format`)."""
