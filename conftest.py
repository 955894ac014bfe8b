"""Kernels started by the tests (nbval, the re-run test) use one CPU thread each, as on Binder,
so that two of them never fight over the cores; and each checks every figure it draws."""
import os

from lora_mini.plots import figure_check_ipython_dir

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

# A cell that draws an axes without labels or a title fails where it drew it (tests/test_plots.py): the
# profile in this IPYTHONDIR installs lora_mini.plots.install_figure_check in every kernel started here.
os.environ["IPYTHONDIR"] = figure_check_ipython_dir()
