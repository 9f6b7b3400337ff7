"""The Kubernetes API emulator for tests: the rehearsal component `rehearsal.kube`.

It moved to `rehearsal/` when ``promptctl rehearse`` started shipping it; tests import it
from here, unchanged. See docs/testing-kubernetes.md.
"""

from __future__ import annotations

from rehearsal.kube import (
    CRD_PATH,
    PROMPTVERSIONS,
    KubeCluster,
    KubeEmulator,
    load_crds,
    run_kube_emulator,
    run_operator,
    write_kubeconfig,
)

__all__ = [
    "CRD_PATH",
    "PROMPTVERSIONS",
    "KubeCluster",
    "KubeEmulator",
    "load_crds",
    "run_kube_emulator",
    "run_operator",
    "write_kubeconfig",
]
