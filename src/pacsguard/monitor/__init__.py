"""Real-time detection: the rule language, the streaming engine and its alerts.

The engine is pure: it takes ``AuditEvent``s (with ``seq`` set, in order) and returns
``Alert`` values; time comes from the events. The audit-log tail, alert storage,
incidents, containment and notification plug in around it.
"""

from pacsguard.monitor.alerts import Alert
from pacsguard.monitor.detectors import Limits
from pacsguard.monitor.engine import Engine, EngineStats
from pacsguard.monitor.geo import UNKNOWN, GeoLookup, MaxMindGeo, SiteGeo, SiteNetworks, site_geo
from pacsguard.monitor.loader import RuleSet, load_rules, parse_rule_file
from pacsguard.monitor.rules import ACTIONS, CHANNELS, KINDS, Response, Rule, Severity
from pacsguard.monitor.source import EventSource, JsonlEventSource, event_from_json, event_to_json

__all__ = [
    "ACTIONS",
    "CHANNELS",
    "KINDS",
    "UNKNOWN",
    "Alert",
    "Engine",
    "EngineStats",
    "EventSource",
    "GeoLookup",
    "JsonlEventSource",
    "Limits",
    "MaxMindGeo",
    "Response",
    "Rule",
    "RuleSet",
    "Severity",
    "SiteGeo",
    "SiteNetworks",
    "event_from_json",
    "event_to_json",
    "load_rules",
    "parse_rule_file",
    "site_geo",
]
