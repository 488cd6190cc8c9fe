"""Word lists and phrases the guardrails match and speak: data, kept apart from the rules."""
