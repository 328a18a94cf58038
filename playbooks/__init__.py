"""Mitigation playbooks, one module each (parameters, plan, execute, undo). The first ones land with the playbook issue."""
