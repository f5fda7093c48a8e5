"""The security dashboard and the JSON API."""
