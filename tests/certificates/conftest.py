"""These tests stand in for the package build (they fill in what each item shipped
themselves), so fulfilment must not queue the real one."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PACKAGE_AUTO_BUILD": False}
