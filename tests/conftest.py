"""Shared test plugins: the embedded AWS sandbox fixtures (tests/sandbox_fixture.py)."""

pytest_plugins = ["tests.sandbox_fixture"]
