"""``python -m service``: run the answering service (see :mod:`service.server`)."""

import os

# Before anything imports prometheus-client, which picks its mode from the environment
# once: one worker keeps plain in-memory metrics even if PROMETHEUS_MULTIPROC_DIR is set.
from service.telemetry.multiprocess_env import apply_multiprocess_env

apply_multiprocess_env(os.environ)

# Before anything imports numpy, whose OpenBLAS reads it once: one BLAS thread (the exact
# search's matrix-vector product; service/blas_threads.py). An operator's value wins.
from service.blas_threads import apply_one_blas_thread  # noqa: E402

apply_one_blas_thread(os.environ)

from service.server import main  # noqa: E402

if __name__ == "__main__":
    main()
