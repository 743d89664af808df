"""The browser of the UI tests: Debian's ``chromium`` through Playwright, one per test module.

Missing (no binary, no playwright package, or it does not start): the tests skip, or fail with
``TRILHA_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.support import CHROMIUM, CHROMIUM_ARGS, unavailable


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        unavailable(f"no browser at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (requirements-test.txt)")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Error as err:
            unavailable(f"{CHROMIUM} does not start: {err}")
        try:
            yield chromium
        finally:
            chromium.close()
