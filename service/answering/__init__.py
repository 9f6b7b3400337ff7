"""One answer: the pipeline, its request/response schemas, guardrails, the response cache and
outcomes.
"""
