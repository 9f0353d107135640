"""The data stage: the codebook, reading coded tables, validating them against it, and cleaning
them into one analysis table.
"""
