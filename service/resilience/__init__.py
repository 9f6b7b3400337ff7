"""Calling the model without making things worse: retries, deadlines, breaker, limits, fallbacks.

Pure policy lives in ``policy``, ``breaker``, ``ratelimit`` and ``budget`` (time is
passed in); ``caller`` applies them around an upstream call with tenacity.
"""
