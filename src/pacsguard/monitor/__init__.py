"""Real-time detection rules, alerts, incidents and containment."""
