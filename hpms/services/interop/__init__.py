"""Interoperability: FHIR export and import, the reads of the FHIR API, and the bearer tokens
of the API's clients (EHRs and other systems), which act as service actors with one role."""
