"""Legacy vs CQRS, measured in one run: ``python -m bench`` (``make bench``).

Each backend gets a fresh, seeded database and two gunicorn servers on it, one serving
every endpoint on the legacy path and one on the new path (read models and commands).
Requests alternate between them so machine noise lands on both sides equally; the
ratios go to a table and to ``bench/out/results.json``.
"""
