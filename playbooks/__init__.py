"""Mitigation playbooks, one module each (parameters, plan, execute, undo); the first land with their issue."""
