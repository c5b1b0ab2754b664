"""HL7 v2.5.1: SIU and ADT messages built from plain records, ADT read into plain records,
acknowledgements, and MLLP framing (an asyncio client and server)."""
