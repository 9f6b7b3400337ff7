"""The rollout controller (kopf): turns PromptVersions into canary weights.

Not written yet: it arrives with the rollout issue. The service already reads
the ``status`` fields it will write (phase, weight, stepIndex, conditions).
"""
