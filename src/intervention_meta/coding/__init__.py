"""Tools for coders: the coding manual, the Excel template, inter-rater reliability and a simulated
second coder.
"""
