"""Load the sandbox fixtures when the root conftest does not list the plugin already."""

from __future__ import annotations

import pytest

PLUGIN = "tests.sandbox_fixture"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
