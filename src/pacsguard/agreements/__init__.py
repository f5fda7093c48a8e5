"""ISO/TS 22600-1 Annex B agreements and the Annex A questionnaire."""
