"""Principals, roles, assignments, delegations, sessions and authentication."""
