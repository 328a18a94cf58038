"""Slack and HTTP handlers: parse, ack, call the core, render the reply."""
