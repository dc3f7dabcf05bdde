"""The Quality-Utility Paradox (paper A).

Small models fine-tuned on their own rejection-sampled traces (SLM-RFT) beat ones fine-tuned on
oracle-refined or oracle-written traces, although a reward model scores the oracle's traces higher;
the cause is distributional drift, and Style-Aligned Refinement (the oracle repairs the logic but
keeps the small model's own style) removes it.

Library modules (one idea each):

* :mod:`.config`    the typed ``paradox:`` params (torch-free; :class:`~.config.ParadoxParams`, what the paradox
  stages load) and the names they use (sets, modes, ...)
* :mod:`.roles`     the disjoint training-pool problems of each role
* :mod:`.rejection` rejection sampling with a conservative fragment filter (:mod:`reasonlab.rejection`,
  shared with the QAT traces)
* :mod:`.drafts`    small-model-like drafts with realistic mistakes (tiny world)
* :mod:`.oracle`    the oracle's prompts, training targets and a verified, retrying runner
* :mod:`.reward`    a Bradley-Terry reward model over a pool of configurable composition
* :mod:`.variants`  the five training sets on identical problem ids
* :mod:`.analysis`  perplexity (global and by quarter), token-frequency shift, checker quality and
  semantic preservation
* :mod:`.students`  the students of a family and their summary over seeds
* :mod:`.tables`, :mod:`.grid` the report's tables; the robustness grid as DVC experiments

:mod:`.drivers` holds the stage drivers.
"""
