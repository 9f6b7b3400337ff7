"""What the service tells operators: traces, metrics, logs and the request log."""
