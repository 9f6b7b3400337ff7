"""A deterministic OpenAI-compatible model server for tests, load and chaos drills."""
