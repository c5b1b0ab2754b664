"""The identifier systems, code systems, extensions and value tables of hpms's FHIR R4 resources:
the one place both the writer (`writing`) and the reader (`reading`) take them from, so what an
export writes is what an import looks for. Plain constants: no database, no I/O.
"""

from __future__ import annotations

# ---- identifier systems --------------------------------------------------------------------

MRN_SYSTEM = "urn:hpms:mrn"  # the practice's medical record numbers (Patient.identifier, type MR)
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
EIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"  # US employer identification number (tax id)
PAYER_ID_SYSTEM = "urn:hpms:x12-payer-id"  # a payer's X12 id (NM109 of loop 2010BB)
MEMBER_ID_SYSTEM = "urn:hpms:member-id"  # `:<payer id>` appended; Coverage.subscriberId holds it too
CLAIM_CONTROL_SYSTEM = "urn:hpms:claim-control-number"  # CLM01, the patient control number
PAYER_CLAIM_SYSTEM = "urn:hpms:payer-claim-number"  # the payer's number of a claim (CLP07)
TRACE_NUMBER_SYSTEM = "urn:hpms:remittance-trace-number"  # TRN02 of the 835 that paid

# identifier type codes (HL7 v2 table 0203)
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN_TYPE = "MR"
SSN_TYPE = "SS"
NPI_TYPE = "NPI"
TAX_ID_TYPE = "TAX"
MEMBER_ID_TYPE = "MB"

# ---- code systems --------------------------------------------------------------------------

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEM = "urn:oid:2.16.840.1.113883.6.285"  # HCPCS Level II
MODIFIER_SYSTEM = "urn:hpms:procedure-modifier"
TAXONOMY_SYSTEM = "http://nucc.org/provider-taxonomy"
POS_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/processpriority"
ADJUDICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/adjudication"
RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
CARC_SYSTEM = "https://x12.org/codes/claim-adjustment-reason-codes"
PAYMENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
HPMS_ADJUDICATION = "urn:hpms:adjudication"  # ClaimResponse.total category patient-responsibility

# ---- extensions ----------------------------------------------------------------------------

TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
BIRTH_SEX_EXTENSION = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
CLAIM_ENCOUNTER_EXTENSION = "urn:hpms:claim-encounter"  # Claim.extension: the Encounter billed

# ---- organizations -------------------------------------------------------------------------

PRACTICE_ORG_TYPE = "prov"  # the practice: a healthcare provider
PAYER_ORG_TYPE = "pay"
PAYER_ORG_TYPES = frozenset({PAYER_ORG_TYPE, "ins"})  # what an import takes for a payer (or insurer)

# ---- names and contacts --------------------------------------------------------------------

OFFICIAL_NAME = "official"  # the legal name: family, given (first, then middle names)
PREFERRED_NAME = "usual"  # the name a patient goes by, written as a given name alone
PREFERRED_NAME_USES = (PREFERRED_NAME, "nickname")  # read as the preferred name, in this order
HOME_ADDRESS = "home"  # the address an import picks first
OLD = "old"  # a name, address or contact point no longer in use: never read
PHONE = "phone"  # ContactPoint.system
EMAIL = "email"
MOBILE = "mobile"  # ContactPoint.use of the main phone when it takes texts
HOME = "home"  # ... and when it does not
WORK = "work"  # a payer's or location's phone

# ---- hpms values and their FHIR codes (one table, read both ways) ---------------------------

# sex at birth -> Patient.gender (administrative gender); read back through SEX_OF_GENDER
GENDER = {"female": "female", "male": "male", "intersex": "other", "unknown": "unknown"}
SEX_OF_GENDER = {code: sex for sex, code in GENDER.items()}
# us-core-birthsex codes -> sex at birth (read before Patient.gender when present)
BIRTH_SEX = {"F": "female", "M": "male", "UNK": "unknown"}

# coverage relationship of the patient to the subscriber: the hpms values are the FHIR codes;
# a code of the value set hpms has no value for (parent, common, injured) is read as `other`
RELATIONSHIPS = ("self", "spouse", "child", "other")
OTHER_RELATIONSHIP = "other"
# the subscriber as the patient's relation (RelatedPerson.relationship, v3-RoleCode)
SUBSCRIBER_ROLE = {"spouse": "SPS", "child": "PRN"}  # a child's subscriber is a parent

# coverage priority -> Coverage.order; an order past the table is the last priority
PRIORITY_ORDER = {"primary": 1, "secondary": 2, "tertiary": 3}
ORDER_PRIORITY = {order: priority for priority, order in PRIORITY_ORDER.items()}
LAST_PRIORITY = "tertiary"
