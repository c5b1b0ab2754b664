"""Messages to patients: the outbox, its sender and the channels' providers."""
