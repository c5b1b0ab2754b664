"""Claim Adjustment Reason Codes (CARC, X12 code list 139): the common ones with a short
description, for reports and work lists. The payer sends the code in a CAS segment together
with a group code (CO contractual obligation, PR patient responsibility, OA other adjustment,
PI payer initiated reduction, CR correction and reversal).

The descriptions are short paraphrases of the published text; a code not listed here is shown
as "CARC <code>" (`carc_text`)."""

from __future__ import annotations

GROUP_CODES = {
    "CO": "Contractual obligation",
    "PR": "Patient responsibility",
    "OA": "Other adjustment",
    "PI": "Payer initiated reduction",
    "CR": "Correction and reversal",
}

CARC: dict[str, str] = {
    "1": "Deductible amount",
    "2": "Coinsurance amount",
    "3": "Copayment amount",
    "4": "Procedure code inconsistent with the modifier, or a required modifier is missing",
    "5": "Procedure code or type of bill inconsistent with the place of service",
    "6": "Procedure inconsistent with the patient's age",
    "7": "Procedure inconsistent with the patient's gender",
    "8": "Procedure inconsistent with the provider type or specialty (taxonomy)",
    "9": "Diagnosis inconsistent with the patient's age",
    "10": "Diagnosis inconsistent with the patient's gender",
    "11": "Diagnosis inconsistent with the procedure",
    "13": "Date of death precedes the date of service",
    "15": "Authorization number missing, invalid or not for these services or provider",
    "16": "Claim or service lacks information or has submission or billing errors",
    "18": "Exact duplicate claim or service",
    "19": "Work-related injury or illness: liability of the workers' compensation carrier",
    "22": "May be covered by another payer (coordination of benefits)",
    "23": "Impact of prior payers' adjudication (payments and adjustments)",
    "24": "Covered under a capitation agreement or managed care plan",
    "26": "Expenses incurred before coverage",
    "27": "Expenses incurred after coverage terminated",
    "29": "Time limit for filing has expired",
    "31": "Patient cannot be identified as our insured",
    "32": "Patient is not an eligible dependent",
    "33": "Insured has no dependent coverage",
    "39": "Services denied when authorization was requested",
    "42": "Charges exceed the fee schedule or maximum allowable amount",
    "44": "Prompt-pay discount",
    "45": "Charge exceeds the fee schedule, maximum allowable or contracted fee",
    "49": "Non-covered: routine or preventive exam, or a screening done with one",
    "50": "Non-covered: not deemed a medical necessity by the payer",
    "51": "Non-covered: pre-existing condition",
    "55": "Procedure, treatment or drug deemed experimental or investigational",
    "58": "Rendered in an inappropriate or invalid place of service",
    "59": "Processed under multiple or concurrent procedure rules",
    "94": "Processed in excess of charges",
    "96": "Non-covered charges",
    "97": "Included in the payment for another service already adjudicated (bundled)",
    "100": "Payment made to the patient, insured or responsible party",
    "104": "Managed care withholding",
    "107": "Related or qualifying claim or service not identified on this claim",
    "109": "Not covered by this payer: send the claim to the correct payer",
    "119": "Benefit maximum for this period or occurrence reached",
    "129": "Prior processing information appears incorrect",
    "131": "Claim-specific negotiated discount",
    "144": "Incentive adjustment",
    "146": "Diagnosis invalid for the date of service",
    "151": "Information submitted does not support this many or this frequency of services",
    "167": "Diagnosis not covered",
    "170": "Denied when performed or billed by this type of provider",
    "172": "Payment adjusted when performed or billed by a provider of this specialty",
    "181": "Procedure code invalid on the date of service",
    "182": "Procedure modifier invalid on the date of service",
    "185": "Rendering provider not eligible to perform the service billed",
    "197": "Precertification, notification or authorization absent",
    "198": "Precertification, notification or authorization exceeded",
    "204": "Service, equipment or drug not covered under the patient's current benefit plan",
    "206": "NPI missing",
    "207": "NPI invalid format",
    "208": "NPI not matched",
    "226": "Information requested from the provider not provided, late or incomplete",
    "234": "Procedure is not paid separately",
    "236": "Procedure or modifier combination not compatible with another on the same day (NCCI)",
    "242": "Services not provided by network or primary care providers",
    "252": "An attachment or other documentation is required to adjudicate",
    "253": "Sequestration: reduction in federal payment",
}


# Reasons that lower what the payer pays without refusing the service: the contracted allowance,
# the prior payer's share, sequestration, discounts, capitation, payment sent to the patient.
# A claim paid nothing whose adjustments are only these and patient responsibility is not a
# denial (e.g. CO-45 + PR-1: the allowed amount went to the deductible).
NOT_DENIAL = frozenset({"23", "24", "42", "44", "45", "59", "94", "100", "104", "131", "144", "172", "253"})
# Groups whose reasons can deny: contractual obligation, other adjustment, payer initiated
# reduction (PR is the patient's share, CR a correction).
DENIAL_GROUPS = ("CO", "OA", "PI")
DENIED_STATUS = "4"  # CLP02
REVERSAL_STATUS = "22"  # CLP02


def is_denial_reason(group: str, reason) -> bool:
    """Whether an adjustment (group + CARC) refuses the service rather than prices it."""
    return group in DENIAL_GROUPS and normalize(reason) not in NOT_DENIAL


def is_denial(status: str, paid_cents: int, adjustments) -> bool:
    """Whether a claim payment is a denial: CLP02 is 4, or nothing was paid and at least one
    non-zero adjustment (group, reason, cents) carries a denial reason. A claim paid nothing
    because the allowed amount is patient responsibility (deductible, coinsurance, copay) is not
    a denial; neither is a reversal."""
    status = (status or "").strip()
    if status == REVERSAL_STATUS:
        return False
    if status == DENIED_STATUS:
        return True
    return paid_cents == 0 and any(cents and is_denial_reason(group, reason) for group, reason, cents in adjustments)


def normalize(code) -> str:
    """The code as the payer sends it, without spaces and leading zeros ("045" -> "45")."""
    text = str(code or "").strip().upper()
    if text.isdigit():
        text = text.lstrip("0") or "0"
    return text


def carc_text(code) -> str:
    """The short description of a CARC, or "CARC <code>" for one not in the list."""
    c = normalize(code)
    return CARC.get(c) or f"CARC {c or '?'}"


def group_text(code) -> str:
    """The name of a CAS group code (CO, PR, OA, PI, CR), or the code itself."""
    c = str(code or "").strip().upper()
    return GROUP_CODES.get(c, c)
