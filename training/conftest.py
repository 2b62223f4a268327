"""pytest setup shared by every test of training/ (the import path is pyproject.toml's
`pythonpath`; shared test helpers live in tests/support.py)."""

from __future__ import annotations

import pytest
import torch

from mambasep_ref import scan


@pytest.fixture(autouse=True)
def _restore_process_settings():
    """The scan implementation and torch's thread count are process-wide, and tests (and
    `train.main`, through --scan and --threads) change them: each test gets them back as it
    found them, so no test depends on the ones before it."""
    impl, threads = scan.get_scan_impl(), torch.get_num_threads()
    yield
    scan.set_scan_impl(impl)
    torch.set_num_threads(threads)
