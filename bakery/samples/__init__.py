"""Sample input generators for local bakes, one module per input table."""
