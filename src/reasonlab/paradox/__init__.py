"""The Quality-Utility Paradox in the tiny world.

Small models fine-tuned on their own rejection-sampled traces (SLM-RFT) beat
ones fine-tuned on oracle-refined or oracle-written traces, although a reward
model scores the oracle's traces higher; the cause is distributional drift,
and Style-Aligned Refinement (the oracle repairs the logic but keeps the small
model's own style) removes it.

* :mod:`.rejection` rejection sampling with a conservative fragment filter
* :mod:`.oracle`    the oracle as a prompted model (synth / refine / style), its
  training data (world-generated drafts with realistic mistakes) and a verified,
  retrying runner
* :mod:`.reward`    a Bradley-Terry reward model over a pool of configurable composition
* :mod:`.variants`  the five training sets on identical problem ids
* :mod:`.analysis`  perplexity (global and by quarter), token-frequency shift,
  step validity and semantic preservation
"""
