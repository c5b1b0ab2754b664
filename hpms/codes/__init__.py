"""Code sets and identifier validators."""
