"""The analysis steps (overall, moderators, components, bias, sensitivity): read the effect sizes,
fit the analysis model (analysis_model), write the machine-readable result (records) and the
readable tables.
"""
