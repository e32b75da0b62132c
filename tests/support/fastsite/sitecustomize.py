"""Puts the fast tier's fence (tests/support/fastguard.py) around a Python child of a `pytest --fast` run."""

import importlib.util
import os
from pathlib import Path

if "FCI_FAST_TIER_VIOLATIONS" in os.environ:
    _spec = importlib.util.spec_from_file_location(
        "_fci_fastguard", Path(__file__).resolve().parents[1] / "fastguard.py"
    )
    _guard = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_guard)
    _guard.install()
