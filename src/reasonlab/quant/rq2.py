"""RQ2 (QAT initialisation) as paired statistics over validation-probe curves and final test accuracy.

Every RQ2 run is probed per problem on the validation split (never a test tier) at step 0 (the init itself)
and every ``quant.qat.eval_every`` steps. A higher start alone must not win: the curve summaries leave step 0
out (:func:`reasonlab.quant.calib_align.area_after_start`), and beside each claim ``rise_diff`` says how far each
curve rose above its own init (a faster convergence with an equal rise is the init's head start, not faster
learning). Each init is compared with the baseline init (RTN), per objective, paired over problems and seeds:

* *converges faster*: area after step 0 of the probe curve;
* *ends higher*: final test accuracy after the fixed budget;
* ``steps_to_target`` per seed: the first probed step at ``target`` x the FP control's probe accuracy (KD: the FP
  model; SFT: the FP model fine-tuned on the same data, when the stage trains controls).

Precondition: at least one of the two inits starts below the FP control by more than 2 standard errors on the
probe; else both start where training should end, and the claim is "not testable here".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..stats import paired_diff
from .calib_align import Z, area_after_start, claim, room, steps_to_target

__all__ = ["Z", "rq2_statistics"]

def rq2_statistics(steps: Sequence[int], curves: Mapping[str, Mapping[str, np.ndarray]],
                   finals: Mapping[str, Mapping[str, np.ndarray]], control_probe: Mapping[str, np.ndarray],
                   target: float = 0.9, baseline: str = "rtn", n_boot: int = 2000) -> dict:
    """RQ2 of one (reasoner, bits).

    ``curves[objective][init]``: ``[seeds, steps, problems]`` probe accuracy per problem at ``steps`` (step 0
    first); ``finals[objective][init]``: ``[seeds, problems]`` final test accuracy per problem; seeds in the same
    order everywhere. ``control_probe[objective]``: ``[problems]`` the FP control's probe accuracy.

    Returns per objective: ``control_probe`` and ``target_acc`` (fractions); per init ``probe_init``,
    ``area_after_start``, ``final`` (means), ``steps_to_target`` per seed and ``reached_share``; per init other
    than ``baseline`` (``vs_<baseline>``): ``room`` (the precondition per init), ``rise_diff``,
    ``converges_faster`` and ``ends_higher`` (verdicts of :func:`~reasonlab.quant.calib_align.claim`).
    """
    steps = [int(s) for s in steps]
    out: dict[str, Any] = {"steps": steps, "baseline": baseline, "target": target, "objectives": {}}
    for obj, by_init in curves.items():
        ctl = np.asarray(control_probe[obj], dtype=float)
        target_acc = target * float(ctl.mean())
        inits: dict[str, dict] = {}
        area = {i: np.stack([area_after_start(steps, c) for c in np.asarray(cur, float)]) for i, cur in by_init.items()}
        start = {i: np.asarray(cur, float)[0, 0] for i, cur in by_init.items()}  # step 0 is the same for every seed
        for init, cur in by_init.items():
            cur = np.asarray(cur, float)
            stt = [steps_to_target(steps, c.mean(axis=1), target_acc) for c in cur]
            inits[init] = {"probe_init": float(start[init].mean()), "area_after_start": float(area[init].mean()),
                           "final": float(np.asarray(finals[obj][init], float).mean()), "steps_to_target": stt,
                           "reached_share": float(np.mean([s is not None for s in stt]))}
        claims: dict[str, dict] = {}
        if baseline in by_init:
            for init in by_init:
                if init == baseline:
                    continue
                gaps = {i: room(ctl, start[i], n_boot=n_boot) for i in (init, baseline)}
                why = (f"neither init starts below the FP control by {Z:g} se on the validation probe (control "
                       f"{ctl.mean():.3f}; {init} {start[init].mean():.3f}, {baseline} {start[baseline].mean():.3f})")
                ok = gaps[init]["met"] or gaps[baseline]["met"]
                claims[init] = {
                    "room": gaps,
                    "rise_diff": paired_diff(area[init] - start[init], area[baseline] - start[baseline], n_boot=n_boot),
                    "converges_faster": claim(paired_diff(area[init], area[baseline], n_boot=n_boot), ok, why),
                    "ends_higher": claim(paired_diff(np.asarray(finals[obj][init], float),
                                                     np.asarray(finals[obj][baseline], float), n_boot=n_boot), ok, why),
                }
        out["objectives"][obj] = {"control_probe": float(ctl.mean()), "target_acc": target_acc, "inits": inits,
                                  f"vs_{baseline}": claims}
    return out
