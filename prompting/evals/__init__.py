"""The eval format and its verdicts (pure): shared by ``promptctl eval`` and the controller's
eval gate (``spec.rollout.evalGate``).

::

    evalset     the YAML format (cases, checks, `not`, weights)          parse_evalset
    graders     each check on one answer                                  assess_checks
    scoring     checks → run results → case results (quorum)             score_run
    comparison  summaries (weighted) and the per-case status of two versions  compare
    gates       the verdict and "evaluated nothing" (setup errors)       assess_gate
    markdown    the Markdown report and the one-line verdict             render_report
    meta        what a report says about its run                          ReportMeta

Asking the service and measuring ``similar_to`` / ``llm_rubric`` is I/O: it lives with its
callers (``promptctl.evals.runner``, ``controller.eval_runner``).
"""
