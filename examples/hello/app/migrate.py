"""Stands in for `alembic upgrade head`: the full example runs it as a preStart step."""

print("migrations: nothing to do")
