"""The paradox stages' drivers: read params, call the library, write the outputs atomically.

One module per DVC stage, so a stage depends on (and DVC re-runs it for) only the code it uses:
:mod:`.oracle_modes`, :mod:`.sample`, :mod:`.reward_model`, :mod:`.variants`, :mod:`.score`, :mod:`.finetune`.
"""
