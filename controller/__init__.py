"""The rollout controller (kopf): turns PromptVersions into canary weights.

``controller.operator`` holds the kopf handlers (run with
``kopf run -A --standalone -m controller.operator``); ``controller.rollout.decide`` is
the pure state machine; ``controller.analysis`` judges a canary from Prometheus. It
writes the ``status`` fields the service reads in cluster mode (phase, weight,
stepIndex, conditions).
"""
