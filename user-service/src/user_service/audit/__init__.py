"""The audit log: every security-relevant action, who did it, to whom, from where, and when."""
