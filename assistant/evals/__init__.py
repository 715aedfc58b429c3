"""Question sets of `assistant eval everyday` and `assistant eval notes` (data files, read with importlib.resources)."""
