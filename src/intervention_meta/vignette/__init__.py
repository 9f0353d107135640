"""The vignette study: its simulated example (:mod:`.simulate`), the models (:mod:`.models`), the
analysis step (:mod:`.analysis`) and its findings (:mod:`.findings`)."""
