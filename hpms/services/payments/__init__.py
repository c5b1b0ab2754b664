"""Money after the claim: the immutable ledger, 835 remittances posted to it, denials and
appeals, patient payments and refunds, and patient statements."""
