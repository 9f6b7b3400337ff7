"""Prompt CI: eval sets, graders, repeated runs, gates and reports for ``promptctl eval``.

::

    evalset     the YAML format (cases, checks, `not`, weights)          pure
    graders     each check on one answer                                  pure
    judge       llm_rubric's judge request and reply                      pure + one call
    scoring     runs → case results (quorum) → summaries → comparison     pure
    gates       the verdict (exit 1) and setup errors (exit 2)            pure
    runner      asking the service, measuring similarity, calling the judge   I/O
    specdiff    what changed between two versions' specs                  pure
    reports/    markdown, junit, document (JSON), html (+ charts, worddiff)   pure
"""
