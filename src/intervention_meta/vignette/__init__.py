"""The factorial vignette study: its models and steps."""
