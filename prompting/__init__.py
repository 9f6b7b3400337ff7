"""Pure prompt domain, no I/O: rendering, variables, servability, phrases, redaction, token
estimates.
"""
