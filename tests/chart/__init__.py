"""Chart tests: run in the Python 3.12 venv (.venv-helm); the main suite ignores them."""
