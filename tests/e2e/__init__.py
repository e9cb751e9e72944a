"""End-to-end tests in a real browser: JupyterLab driven by Playwright and Debian's Chromium.

Marked ``browser``; `make test` runs them when ``chromium`` is on PATH (``make e2e`` alone).
"""
