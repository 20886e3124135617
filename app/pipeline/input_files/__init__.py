"""Users' input files: their format and whole-file checks, where a malformed one first goes wrong,
and what Polars' readers do not tell of a value (casts, CSV lines, JSON Lines text, NUL)."""
