"""Prompt CI: the I/O around the eval format for ``promptctl eval``.

The format, graders, scoring, comparison, verdict and Markdown report are pure and live in
``prompting.evals`` (the controller's eval gate uses them too). Here::

    judge       llm_rubric's judge request and reply                      pure + one call
    runner      asking the service, measuring similarity, calling the judge   I/O
    specdiff    what changed between two versions' specs                  pure
    plan        which eval sets a branch must run (the prompts workflow)  pure + git
    reports/    junit, document (JSON), html (+ charts, worddiff)         pure
"""
