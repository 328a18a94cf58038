"""Slack mrkdwn and Block Kit: the one place where facts become what people read."""
