"""Patients and what they bring: registration, search, duplicates and merges, the CSV import,
payers and insurance coverage, and patient satisfaction surveys."""
