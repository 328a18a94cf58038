"""Alerts as Alertmanager sends them (webhook payload version 4), and as firebreak keeps them."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Alertmanager's "not set" for endsAt of a firing alert."""


class Alert(BaseModel):
    """One alert of a webhook (Alertmanager's field names)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @field_validator("ends_at", mode="before")
    @classmethod
    def _unset(cls, v: object) -> object:
        return None if v in (None, "", ZERO_TIME) else v

    @field_validator("labels")
    @classmethod
    def _named(cls, v: dict[str, str]) -> dict[str, str]:
        if not v.get("alertname"):
            raise ValueError("every alert needs an alertname label")
        return v

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def identity(self) -> str:
        """Alertmanager's fingerprint (a hash of the labels), or ours when an older sender leaves it out."""
        if self.fingerprint:
            return self.fingerprint
        joined = "\x00".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    @property
    def occurrence(self) -> str:
        """This alert, this time it fired, in this state: a repeat of the same webhook changes nothing."""
        return f"{self.identity}:{self.starts_at.isoformat()}:{self.status}"

    def scope(self, keys: tuple[str, ...]) -> dict[str, str]:
        return {k: self.labels[k] for k in keys if self.labels.get(k)}

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or self.name


class AlertmanagerWebhook(BaseModel):
    """The body of Alertmanager's webhook (version 4); anything else is refused."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    alerts: list[Alert] = Field(min_length=1)


class AlertOrigin(BaseModel):
    """The alert an incident was declared from: what the summary shows, with its links."""

    model_config = ConfigDict(frozen=True)

    name: str
    summary: str
    starts_at: datetime
    generator_url: str = ""
    runbook_url: str = ""
    dashboard_url: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, alert: Alert) -> AlertOrigin:
        a = alert.annotations
        return cls(
            name=alert.name,
            summary=alert.summary,
            starts_at=alert.starts_at,
            generator_url=alert.generator_url,
            runbook_url=a.get("runbook_url", ""),
            dashboard_url=a.get("dashboard_url") or a.get("dashboard", "") or a.get("grafana_url", ""),
            labels=alert.labels,
        )


class Triage(BaseModel):
    """An alert group waiting in the triage channel for a person: declare an incident from it, or ignore it."""

    model_config = ConfigDict(frozen=True)

    group: str
    """A short id of the Alertmanager group key (what the buttons carry)."""
    alert: Alert
    """The group's first alert: what the message and a declare are made from."""
    counts: dict[str, int] = Field(default_factory=dict)
    """Occurrences by alert name and scope, like an incident's storm message."""
    decided: str | None = None
    """"declared" or "ignored", once someone pressed a button; then the message has none left."""
    decided_by: str | None = None
    incident_id: int | None = None
