"""Which CPU kernels TensorFlow runs: importing fastmri_recon first turns oneDNN's on, an explicit 0 keeps Eigen's."""

import json
import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import json, sys
{first}
from fastmri_recon.training.strategy import cpu_kernels_warning, onednn_enabled
import os
print(json.dumps({{"variable": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "onednn": onednn_enabled(), "warning": cpu_kernels_warning()}}))
"""


def probe(first, variable=None):
    """Run the probe in a fresh interpreter with ``first`` imported first and the variable set (or not)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    if variable is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = variable
    result = subprocess.run([sys.executable, "-c", PROBE.format(first=first)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


x86_linux = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


@pytest.mark.slow
@pytest.mark.skipif(not x86_linux, reason="TensorFlow's wheels hold oneDNN on x86-64 Linux")
@pytest.mark.parametrize("variable, expected, onednn", [(None, "1", True), ("0", "0", False)], ids=["unset-turned-on", "explicit-zero-kept"])
def test_importing_the_package_first_sets_the_kernels_without_a_warning(variable, expected, onednn):
    report = probe("import fastmri_recon", variable=variable)
    assert report["variable"] == expected
    assert report["onednn"] is onednn
    assert report["warning"] is None


@pytest.mark.slow
@pytest.mark.skipif(not x86_linux, reason="TensorFlow's wheels hold oneDNN on x86-64 Linux")
def test_tensorflow_imported_first_warns_only_where_it_left_onednn_off():
    report = probe("import tensorflow")
    assert report["variable"] is None  # the package does not touch the variable once TensorFlow is in
    if report["onednn"]:  # a CPU where TensorFlow turns oneDNN on by itself
        assert report["warning"] is None
    else:
        assert "Eigen CPU kernels" in report["warning"] and "import fastmri_recon before tensorflow" in report["warning"]
