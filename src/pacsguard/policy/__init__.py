"""The decision point: rule language, loader, compiled policies, explanations, consent,
break-glass, policy tests and policy diffs (ISO/TS 22600 access control)."""

from pacsguard.policy.breakglass import BreakGlassRefusal, request_break_glass
from pacsguard.policy.compiler import CompiledPolicy, compile_policy
from pacsguard.policy.consent import consent_forbids
from pacsguard.policy.decide import BREAK_GLASS_ACTIONS, BREAK_GLASS_OBLIGATIONS, DecisionPoint
from pacsguard.policy.diff import DecisionChange, diff_decisions
from pacsguard.policy.explain import render
from pacsguard.policy.loader import load_policies, parse_policy_files
from pacsguard.policy.model import Conditions, PolicySet, Rule
from pacsguard.policy.requests import RequestSpec, build_request
from pacsguard.policy.store import PolicyStore, ReloadResult
from pacsguard.policy.terms import AgreementTerms
from pacsguard.policy.testing import CaseResult, run_case_files

__all__ = [
    "BREAK_GLASS_ACTIONS",
    "BREAK_GLASS_OBLIGATIONS",
    "AgreementTerms",
    "BreakGlassRefusal",
    "CaseResult",
    "CompiledPolicy",
    "Conditions",
    "DecisionChange",
    "DecisionPoint",
    "PolicySet",
    "PolicyStore",
    "ReloadResult",
    "RequestSpec",
    "Rule",
    "build_request",
    "compile_policy",
    "consent_forbids",
    "diff_decisions",
    "load_policies",
    "parse_policy_files",
    "render",
    "request_break_glass",
    "run_case_files",
]
