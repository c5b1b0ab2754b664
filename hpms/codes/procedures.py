"""Procedure codes and modifiers: formats of CPT and HCPCS Level II codes, a small built-in list
of common HCPCS Level II codes, and the modifiers hpms accepts on a claim line.

CPT descriptors are copyrighted by the AMA: none are shipped. Any well-formed CPT code is
accepted; a practice that licenses the descriptors imports them (`hpms codes import-cpt`).
"""

from __future__ import annotations

import re

_CPT = re.compile(r"\d{5}|\d{4}[FTU]")  # Category I; II (F), III (T) and PLA (U) codes
_HCPCS = re.compile(r"[A-V]\d{4}")  # HCPCS Level II: a letter and four digits

MODIFIERS: dict[str, str] = {
    "22": "Increased procedural services",
    "24": "Unrelated E/M service by the same physician during a postoperative period",
    "25": "Significant, separately identifiable E/M service by the same physician on the same day",
    "26": "Professional component",
    "27": "Multiple outpatient hospital E/M encounters on the same date",
    "32": "Mandated services",
    "33": "Preventive services",
    "47": "Anesthesia by surgeon",
    "50": "Bilateral procedure",
    "51": "Multiple procedures",
    "52": "Reduced services",
    "53": "Discontinued procedure",
    "54": "Surgical care only",
    "55": "Postoperative management only",
    "56": "Preoperative management only",
    "57": "Decision for surgery",
    "58": "Staged or related procedure by the same physician during the postoperative period",
    "59": "Distinct procedural service",
    "62": "Two surgeons",
    "63": "Procedure performed on infants less than 4 kg",
    "66": "Surgical team",
    "76": "Repeat procedure or service by the same physician",
    "77": "Repeat procedure or service by another physician",
    "78": "Unplanned return to the operating room by the same physician during the postoperative period",
    "79": "Unrelated procedure or service by the same physician during the postoperative period",
    "80": "Assistant surgeon",
    "81": "Minimum assistant surgeon",
    "82": "Assistant surgeon (when a qualified resident surgeon is not available)",
    "90": "Reference (outside) laboratory",
    "91": "Repeat clinical diagnostic laboratory test",
    "92": "Alternative laboratory platform testing",
    "93": "Synchronous telemedicine service via telephone or other real-time audio-only system",
    "95": "Synchronous telemedicine service via real-time interactive audio and video",
    "96": "Habilitative services",
    "97": "Rehabilitative services",
    "99": "Multiple modifiers",
    "AA": "Anesthesia services performed personally by the anesthesiologist",
    "AD": "Medical supervision by a physician: more than four concurrent anesthesia procedures",
    "AI": "Principal physician of record",
    "AS": "Physician assistant, nurse practitioner or clinical nurse specialist assisting at surgery",
    "CR": "Catastrophe/disaster related",
    "CS": "Cost-sharing waived for specified services (e.g. COVID-19 testing related)",
    "E1": "Upper left, eyelid",
    "E2": "Lower left, eyelid",
    "E3": "Upper right, eyelid",
    "E4": "Lower right, eyelid",
    "F1": "Left hand, second digit",
    "F2": "Left hand, third digit",
    "F3": "Left hand, fourth digit",
    "F4": "Left hand, fifth digit",
    "F5": "Right hand, thumb",
    "F6": "Right hand, second digit",
    "F7": "Right hand, third digit",
    "F8": "Right hand, fourth digit",
    "F9": "Right hand, fifth digit",
    "FA": "Left hand, thumb",
    "FS": "Split (or shared) E/M visit",
    "FT": "Unrelated E/M visit on the same day as another E/M or during a global period",
    "GA": "Waiver of liability statement (ABN) issued as required by payer policy, individual case",
    "GC": "Service performed in part by a resident under the direction of a teaching physician",
    "GE": "Service performed by a resident without a teaching physician under the primary care exception",
    "GG": "Screening and diagnostic mammogram on the same patient, same day",
    "GH": "Diagnostic mammogram converted from a screening mammogram on the same day",
    "GJ": "Opt-out physician or practitioner emergency or urgent service",
    "GN": "Services delivered under an outpatient speech-language pathology plan of care",
    "GO": "Services delivered under an outpatient occupational therapy plan of care",
    "GP": "Services delivered under an outpatient physical therapy plan of care",
    "GQ": "Via asynchronous telecommunications system",
    "GT": "Via interactive audio and video telecommunication systems",
    "GU": "Waiver of liability statement issued as required by payer policy, routine notice",
    "GV": "Attending physician not employed or paid under arrangement by the patient's hospice provider",
    "GW": "Service not related to the hospice patient's terminal condition",
    "GX": "Notice of liability issued, voluntary under payer policy",
    "GY": "Item or service statutorily excluded or not a benefit",
    "GZ": "Item or service expected to be denied as not reasonable and necessary",
    "JW": "Drug amount discarded/not administered to any patient",
    "JZ": "Zero drug amount discarded/not administered to any patient",
    "KX": "Requirements specified in the medical policy have been met",
    "LT": "Left side",
    "Q5": "Service furnished under a reciprocal billing arrangement by a substitute physician",
    "Q6": "Service furnished under a fee-for-time compensation arrangement by a substitute physician",
    "QK": "Medical direction of two, three or four concurrent anesthesia procedures",
    "QW": "CLIA waived test",
    "QX": "CRNA service with medical direction by a physician",
    "QY": "Medical direction of one CRNA by an anesthesiologist",
    "QZ": "CRNA service without medical direction by a physician",
    "RT": "Right side",
    "SA": "Nurse practitioner rendering service in collaboration with a physician",
    "SB": "Nurse midwife",
    "T1": "Left foot, second digit",
    "T2": "Left foot, third digit",
    "T3": "Left foot, fourth digit",
    "T4": "Left foot, fifth digit",
    "T5": "Right foot, great toe",
    "T6": "Right foot, second digit",
    "T7": "Right foot, third digit",
    "T8": "Right foot, fourth digit",
    "T9": "Right foot, fifth digit",
    "TA": "Left foot, great toe",
    "TC": "Technical component",
    "XE": "Separate encounter",
    "XP": "Separate practitioner",
    "XS": "Separate structure/organ",
    "XU": "Unusual non-overlapping service",
}

# Common HCPCS Level II codes (public CMS data), so that a clinic can bill them before it
# imports the quarterly file.
HCPCS_BUILTIN: dict[str, str] = {
    "A4206": "Syringe with needle, sterile, 1 cc or less, each",
    "A4215": "Needle, sterile, any size, each",
    "A4253": "Blood glucose test or reagent strips for home glucose monitor, per 50 strips",
    "A4550": "Surgical trays",
    "A4565": "Slings",
    "A4570": "Splint",
    "A9270": "Non-covered item or service",
    "E0100": "Cane, includes canes of all materials, adjustable or fixed, with tip",
    "E0114": "Crutches, underarm, other than wood, adjustable or fixed, pair, with pads, tips and handgrips",
    "E0143": "Walker, folding, wheeled, adjustable or fixed height",
    "G0008": "Administration of influenza virus vaccine",
    "G0009": "Administration of pneumococcal vaccine",
    "G0010": "Administration of hepatitis B vaccine",
    "G0101": "Cervical or vaginal cancer screening; pelvic and clinical breast examination",
    "G0102": "Prostate cancer screening; digital rectal examination",
    "G0103": "Prostate cancer screening; prostate specific antigen test (PSA)",
    "G0136": "Administration of a standardized social determinants of health risk assessment tool, 5-15 minutes",
    "G0328": "Colorectal cancer screening; fecal occult blood test, immunoassay, 1-3 simultaneous determinations",
    "G0402": "Initial preventive physical examination; face-to-face visit, within the first 12 months of Medicare",
    "G0438": "Annual wellness visit, including a personalized prevention plan of service (PPPS), initial visit",
    "G0439": "Annual wellness visit, including a personalized prevention plan of service (PPPS), subsequent visit",
    "G0442": "Annual alcohol misuse screening, 5 to 15 minutes",
    "G0443": "Brief face-to-face behavioral counseling for alcohol misuse, 15 minutes",
    "G0444": "Annual depression screening, 5 to 15 minutes",
    "G0446": "Annual face-to-face intensive behavioral therapy for cardiovascular disease, 15 minutes",
    "G0447": "Face-to-face behavioral counseling for obesity, 15 minutes",
    "G0463": "Hospital outpatient clinic visit for assessment and management of a patient",
    "G2211": "Visit complexity inherent to E/M associated with continuing longitudinal care (add-on)",
    "H0001": "Alcohol and/or drug assessment",
    "H0031": "Mental health assessment, by non-physician",
    "J0171": "Injection, adrenalin, epinephrine, 0.1 mg",
    "J0561": "Injection, penicillin G benzathine, 100,000 units",
    "J0696": "Injection, ceftriaxone sodium, per 250 mg",
    "J1030": "Injection, methylprednisolone acetate, 40 mg",
    "J1040": "Injection, methylprednisolone acetate, 80 mg",
    "J1050": "Injection, medroxyprogesterone acetate, 1 mg",
    "J1100": "Injection, dexamethasone sodium phosphate, 1 mg",
    "J1200": "Injection, diphenhydramine HCl, up to 50 mg",
    "J1885": "Injection, ketorolac tromethamine, per 15 mg",
    "J2405": "Injection, ondansetron hydrochloride, per 1 mg",
    "J2550": "Injection, promethazine HCl, up to 50 mg",
    "J3301": "Injection, triamcinolone acetonide, not otherwise specified, 10 mg",
    "J3420": "Injection, vitamin B-12 cyanocobalamin, up to 1,000 mcg",
    "J3490": "Unclassified drugs",
    "J7030": "Infusion, normal saline solution, 1,000 cc",
    "J7050": "Infusion, normal saline solution, 250 cc",
    "L3908": "Wrist hand orthosis, wrist extension control cock-up, non molded, prefabricated, off-the-shelf",
    "Q0091": "Screening Papanicolaou smear; obtaining, preparing and conveyance of smear to laboratory",
    "Q3014": "Telehealth originating site facility fee",
    "T1015": "Clinic visit/encounter, all-inclusive",
    "V5010": "Assessment for hearing aid",
}


def normalize(code: str) -> str:
    """Strip spaces and upper-case: ' g0438 ' -> 'G0438'."""
    return "".join(str(code).split()).upper()


def is_cpt(code: str) -> bool:
    """A well-formed CPT code: five digits, or four digits and F, T or U."""
    return bool(_CPT.fullmatch(normalize(code)))


def is_hcpcs(code: str) -> bool:
    """A well-formed HCPCS Level II code: a letter A-V and four digits."""
    return bool(_HCPCS.fullmatch(normalize(code)))


def check_procedure(code: str) -> str:
    """The normalized code, or ValueError saying what a procedure code looks like."""
    value = normalize(code)
    if _CPT.fullmatch(value) or _HCPCS.fullmatch(value):
        return value
    raise ValueError(
        f"{code!r} is not a procedure code: expected CPT (5 digits, or 4 digits and F, T or U) "
        "or HCPCS Level II (a letter A-V and 4 digits)"
    )


def check_modifier(mod: str) -> str:
    """The normalized modifier, or ValueError when it is not one hpms knows."""
    value = normalize(mod)
    if value in MODIFIERS:
        return value
    raise ValueError(f"unknown modifier {mod!r} (see `hpms codes modifiers`)")
