"""Report formats of ``promptctl eval``: Markdown, JUnit XML, JSON and HTML (all pure)."""
