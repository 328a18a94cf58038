"""Adapters: the only modules that talk to Redis, Slack and other outside systems."""
