"""Effect sizes: conversions from what a study reported (conversions) and the effect-size step
(compute).
"""
