"""Which held-out problems each role of the paradox pipeline uses.

The pool is the world's held-out split (never seen in pretraining, so no role fine-tunes a model on data it
was pretrained on). It is permuted under ``paradox.problems.seed`` and dealt round-robin to three disjoint roles
(:data:`ROLES`): the problems the families rejection-sample (and the five sets are built on), the
problems whose drafts teach the oracle its modes, and the problems of the reward model's pairs. So
the oracle never trains on, and the reward model never sees, the problems of the sets it later
writes or scores; and each role's problems do not depend on how many the other roles use.
"""

from __future__ import annotations

import numpy as np

from ..schema import ParamsError
from ..world.tasks import Item, Task

ROLES = ("rft", "oracle_modes", "reward")


def role_indices(pool_size: int, role: str, n: int, seed: int) -> np.ndarray:
    """Pool indices of the first ``n`` problems of ``role``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    perm = np.random.default_rng([seed, 11]).permutation(pool_size)
    mine = perm[ROLES.index(role):: len(ROLES)]
    if n > len(mine):
        raise ParamsError(f"params.yaml: paradox.problems.{role}={n} exceeds the {len(mine)} problems of that role "
                          f"(a third of the held-out pool of {pool_size}: raise world.heldout_size)")
    return mine[:n]


def role_items(task: Task, role: str, n: int, seed: int) -> list[Item]:
    """The first ``n`` held-out problems of ``role`` as task items."""
    return task.heldout_items(role_indices(task.heldout_size, role, n, seed))
