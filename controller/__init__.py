"""The rollout controller (kopf): turns PromptVersions into canary weights.

``controller.operator`` holds the kopf handlers (run with
``kopf run -A --standalone -m controller.operator``); they read, call pure functions and
write. ``controller.views`` turns objects into ``controller.versions``' views, and
``decide_analysis`` there says which canary to measure; ``controller.rollout.decide`` is
the pure state machine; ``controller.analysis`` judges a canary from Prometheus
(``controller.prometheus`` asks it); ``controller.status`` is the typed status patch and
the one way to mark a version Invalid. It writes the ``status`` fields the service reads
in cluster mode (phase, weight, stepIndex, conditions).
"""
