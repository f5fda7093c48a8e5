"""ISO/TS 22600-1 Annex B agreements and the Annex A questionnaire."""

from pacsguard.agreements.loader import load_agreement, load_agreements
from pacsguard.agreements.model import Agreement, AgreementState

__all__ = ["Agreement", "AgreementState", "load_agreement", "load_agreements"]
