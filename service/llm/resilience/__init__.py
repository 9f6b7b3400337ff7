"""Calling the model without making things worse: retries, deadlines, breaker, limits, fallbacks.

Pure policy lives in ``policy`` (statuses, Retry-After, backoff, deadline slices),
``breaker``, ``ratelimit`` and ``budget`` (time is passed in); ``deadline`` is the one
deadline of a request; ``config`` holds the knobs and observer hooks; ``outcomes``
classifies failures and tallies a request; ``caller`` applies them around an upstream
call with tenacity.
"""
