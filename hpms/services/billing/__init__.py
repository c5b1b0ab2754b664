"""From a visit to a claim: code sets, fee schedules, encounters (charge capture), the claim
scrubber, the nightly billing run and its 837P files, claims and their statuses, secondary
claims, and 270/271 eligibility questions to the payers."""
