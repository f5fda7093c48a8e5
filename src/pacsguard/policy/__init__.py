"""The decision point: rule language, loader, compiled policies, explanations."""
