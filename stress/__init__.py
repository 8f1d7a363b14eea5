"""``python -m stress`` (``make stress``): attack the shop through real gunicorn servers.

Each scenario runs against a fresh copy of a small seeded shop, on SQLite and on
PostgreSQL, through gunicorn with 4 workers on loopback, and judges the promises the
toolkit makes (docs/reliability.md) from what the clients saw and what the database holds
afterwards. A scenario returns a :class:`stress.results.ScenarioResult`; the CLI prints a
table and writes them all to JSON. ``--quick`` is the short version ``make test`` runs
(tests/e2e/test_stress_quick.py).
"""
