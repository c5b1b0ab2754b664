"""FHIR R4 (R4B): hpms records as resources (writing) for the export and the read API, and
resources read back into plain records (reading) for the import."""
