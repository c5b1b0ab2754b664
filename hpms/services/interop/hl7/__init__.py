"""HL7 v2 interfaces: the receivers of hpms's SIU and ADT messages, the messages queued on
scheduling and registration events (the HL7 outbox, in the event's transaction), their sender
over MLLP or into a folder, the ADT messages received (recorded, then applied or staged for
review), and the state of each interface."""
