"""Pinned CPU numerics: one kernel path on every x86-64 CPU with AVX2; the same bits at any thread count on one vendor.

MKL and ATen pick their kernels by CPU: on an AVX-512 Intel Xeon they run AVX-512 code, on AMD MKL runs its
AVX2 path, and the tiny world's chaotic trainings turn the last bit of difference into different verdicts.
Forcing one code path everywhere gives the same bits at any thread count on one CPU vendor (measured with a probe
that trains a tiny Qwen2 for 30 steps and hashes its weights; ``docs/design.md``, "Reproducing bit for bit"):

* ``MKL_CBWR=AVX2,STRICT``     MKL's conditional numerical reproducibility, AVX2 branch, strict mode: without
                               STRICT an AVX-512 Intel Xeon gave other bits at 1 thread than at 2 and 4
                               (the probe, 2026-12-02); with it, the same at 1, 2, 4;
* ``ATEN_CPU_CAPABILITY=avx2`` ATen's vectorised kernels (softmax, norms, AdamW, reductions) at AVX2;
* ``ONEDNN_MAX_CPU_ISA=AVX2``  oneDNN's ISA cap (a precaution: no kernel this package runs was seen to use it).

All three are read once, when the libraries first run a kernel, so they are set in ``os.environ`` when the
package is imported (``reasonlab/__init__.py`` calls :func:`pin` before anything imports torch). Child
processes (DVC stages, papermill report kernels, test subprocesses) inherit them.

The switch ``REASONLAB_NUMERICS`` chooses the mode:

* ``avx2`` (default) the settings above; a value the user already exported wins (and is reported);
* ``compatible``     ``MKL_CBWR=COMPATIBLE`` and ATen's scalar ``default`` path: for CPUs without AVX2, slow;
* ``native``         opt out: the libraries choose by CPU (faster on AVX-512 machines; other bits).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SWITCH = "REASONLAB_NUMERICS"
MODES: dict[str, dict[str, str]] = {
    "avx2": {"MKL_CBWR": "AVX2,STRICT", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "compatible": {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "native": {},
}
DEFAULT_MODE = "avx2"
KEYS = ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def mode(environ: MutableMapping[str, str] = os.environ) -> str:
    """The numerics mode ``REASONLAB_NUMERICS`` asks for (default ``avx2``); a clear error on a bad value."""
    m = environ.get(SWITCH, DEFAULT_MODE).strip().lower() or DEFAULT_MODE
    if m not in MODES:
        raise ValueError(f"{SWITCH}={environ[SWITCH]!r}: must be one of {sorted(MODES)}")
    return m


def pin(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the mode's variables in ``environ`` (values already exported win); return what the mode set.

    Called on import of the package. If torch has already run a kernel in this process the settings may come
    too late for it: :func:`state` then reports the capability torch actually uses.
    """
    wanted = MODES[mode(environ)]
    for k, v in wanted.items():
        environ.setdefault(k, v)
    return {k: environ[k] for k in wanted}


def state() -> dict[str, str]:
    """What this process runs with: the mode, the variables and torch's CPU capability (imports torch)."""
    import torch

    return {"mode": mode(), **{k: os.environ.get(k, "") for k in KEYS},
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": str(torch.get_num_threads())}


def describe() -> str:
    """One line for a stage's log: ``numerics avx2 (ATen AVX2, MKL_CBWR=AVX2,STRICT, 2 threads)``."""
    s = state()
    return f"numerics {s['mode']} (ATen {s['cpu_capability']}, MKL_CBWR={s['MKL_CBWR'] or 'unset'}, {s['threads']} threads)"

