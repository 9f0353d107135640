"""Methods over fitted models and arrays that are not the model itself: publication bias (bias) and
influence diagnostics (influence).
"""
