"""External audit sources: an ATNA Audit Record Repository (IHE ITI-20 over TLS and UDP)
and bulk imports (pacsguard JSONL, FHIR AuditEvent, DICOM PS3.15 A.5 XML).

Parsing is pure (``dicom_xml``, ``fhir_json``, ``syslog_record``, ``framing``); the
documented mapping to pacsguard event types is ``mapping.MAPPING_TABLE``; provenance
keys in ``detail`` are described in ``provenance``.
"""

from pacsguard.ingest.dicom_xml import parse_dicom_xml
from pacsguard.ingest.fhir_json import fhir_resources, parse_fhir, parse_fhir_json
from pacsguard.ingest.framing import Bad, Frame, Framer
from pacsguard.ingest.importer import Importer, ImportReport
from pacsguard.ingest.mapping import MAPPING_TABLE, classify, to_event
from pacsguard.ingest.message import Message, Participant, ParticipantObject
from pacsguard.ingest.provenance import INGEST_KEY, Provenance, attach, content_key
from pacsguard.ingest.receiver import Counters, Receiver, ReceiverOptions, rejected_event
from pacsguard.ingest.store import IngestStore, Quarantined
from pacsguard.ingest.syslog_record import SyslogRecord, parse_payload, parse_syslog
from pacsguard.ingest.syslog_server import ReceiverThread, SyslogServer, peer_subject, server_tls_context

__all__ = [
    "INGEST_KEY",
    "MAPPING_TABLE",
    "Bad",
    "Counters",
    "Frame",
    "Framer",
    "ImportReport",
    "Importer",
    "IngestStore",
    "Message",
    "Participant",
    "ParticipantObject",
    "Provenance",
    "Quarantined",
    "Receiver",
    "ReceiverOptions",
    "ReceiverThread",
    "SyslogRecord",
    "SyslogServer",
    "attach",
    "classify",
    "content_key",
    "fhir_resources",
    "parse_dicom_xml",
    "parse_fhir",
    "parse_fhir_json",
    "parse_payload",
    "parse_syslog",
    "peer_subject",
    "rejected_event",
    "server_tls_context",
    "to_event",
]
