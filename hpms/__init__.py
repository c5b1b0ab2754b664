"""hpms: terminal-first practice management for outpatient clinics."""

__version__ = "0.1.0"
