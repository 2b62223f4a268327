"""The folder as a package: pyproject.toml names every module, and the scripts run as plain
files (`python3 training/X.py`, from any folder, with nothing installed and no PYTHONPATH)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_module():
    cfg = tomllib.loads((TRAINING / "pyproject.toml").read_text())
    listed = set(cfg["tool"]["setuptools"]["py-modules"])
    assert listed == {p.stem for p in TRAINING.glob("*.py")} - {"conftest"}
    assert cfg["tool"]["setuptools"]["packages"] == ["mambasep_ref"]


@pytest.mark.parametrize("script", ["train.py", "export.py"])
def test_scripts_run_as_plain_files_from_elsewhere(script, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, str(TRAINING / script), "--help"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout
