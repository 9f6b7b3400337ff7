"""Prompt CI: eval sets, graders, repeated runs, gates and reports for ``promptctl eval``.

::

    evalset     the YAML format (cases, checks, `not`, weights)          pure
    graders     each check on one answer                                  pure
    judge       llm_rubric's judge request and reply                      pure + one call
    scoring     checks → run results → case results (quorum)             pure
    comparison  summaries (weighted) and the per-case status of two versions  pure
    gates       the verdict (exit 1) and setup errors (exit 2)            pure
    runner      asking the service, measuring similarity, calling the judge   I/O
    specdiff    what changed between two versions' specs                  pure
    plan        which eval sets a branch must run (the prompts workflow)  pure + git
    reports/    markdown, junit, document (JSON), html (+ charts, worddiff)   pure
"""
