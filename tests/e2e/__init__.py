"""End-to-end tests: real processes and servers on 127.0.0.1 (the Kubernetes API is emulated)."""
