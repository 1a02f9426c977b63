"""Mutation testing: ``make mutate`` (see run.py); results in mutate/results/."""
