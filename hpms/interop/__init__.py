"""Interchange formats: writers and readers for the files hpms exchanges with others."""
