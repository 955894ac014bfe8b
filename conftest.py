"""Kernels started by the tests (nbval, the re-run test) use one CPU thread each, as on Binder,
so that two of them never fight over the cores."""
import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")
