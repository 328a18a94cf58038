"""The incident practice a team configures: severities, roles, naming. Loaded from FIREBREAK_CONFIG YAML."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.core.alert_rules import AlertConfig
from bot.core.catalogue import GuideConfig
from bot.core.errors import ConfigError, UsageError
from bot.core.evidence_config import EvidenceConfig
from bot.models import IC


class SeverityLevel(BaseModel):
    """One rung of the severity ladder; level 1 is the worst."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: int = Field(ge=1, le=9)
    """1 is the most severe."""
    description: str
    """What qualifies, shown in help and the declare modal."""
    update_every_minutes: int = Field(gt=0, le=24 * 60)
    """Status-update cadence: the IC is reminded when no update came for this long."""

    @property
    def name(self) -> str:
        return f"sev{self.level}"

    @property
    def label(self) -> str:
        return f"SEV{self.level}"


DEFAULT_SEVERITIES = (
    SeverityLevel(level=1, description="Critical: customer-facing outage or data loss", update_every_minutes=30),
    SeverityLevel(level=2, description="Major: significant degradation for many users", update_every_minutes=60),
    SeverityLevel(level=3, description="Minor: partial degradation, workaround exists", update_every_minutes=120),
    SeverityLevel(level=4, description="Low: no user impact yet, needs coordination", update_every_minutes=240),
)


POOL_LABELS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "node-pool",
)


class NodeLimits(BaseModel):
    """How much of a cluster's capacity one node playbook may take out at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_nodes: int = Field(default=10, ge=1)
    """Nodes one request may change."""
    max_pool_fraction: float = Field(default=0.5, gt=0, le=1)
    """Share of a pool one request may cordon."""
    min_ready_left: int = Field(default=1, ge=0)
    """Ready, schedulable nodes that must remain in each pool touched."""
    pool_labels: tuple[str, ...] = POOL_LABELS
    """Node labels that name a pool, tried in order; the first the nodes carry is the pool label."""


class DrainLimits(BaseModel):
    """How long a drain waits for PodDisruptionBudgets, as kubectl drain retries a 429 eviction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pdb_wait_seconds: float = Field(default=300, gt=0, le=3600)
    """How long one pod's eviction is retried while a PodDisruptionBudget forbids it; then it fails, named."""
    retry_seconds: float = Field(default=5, gt=0, le=60)
    """Pause between eviction attempts a PodDisruptionBudget refused (kubectl drain waits 5 s)."""
    concurrency: int = Field(default=10, ge=1, le=100)
    """API calls (evictions, cordons) in flight at once per drain; a pod waiting out a budget holds no slot."""


class ScaleLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_step: int = Field(default=10, ge=1)
    """The most one scale request may add or remove replicas."""


class ApprovalRule(BaseModel):
    """Who may ask for a playbook and who must approve it. Ids are Slack users (U…, W…) or user groups (S…)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requesters: tuple[str, ...] = ()
    """Who may request; empty means any member of the incident channel."""
    approvers: tuple[str, ...] = ()
    """Who may approve; empty means anyone but the requester."""
    approvals: int = Field(default=1, ge=0, le=5)
    """Distinct approvals needed before it runs; 0 runs it on request (not advised for writes)."""
    self_approval: bool = False
    """Whether the requester's own approval counts (off: the two-person rule)."""
    expire_minutes: int = Field(default=15, ge=1, le=24 * 60)
    """A request not approved by then can no longer run; its buttons are removed."""

    @field_validator("requesters", "approvers")
    @classmethod
    def _ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for who in v:
            if not re.fullmatch(r"[UWS][A-Z0-9]{2,}", who):
                raise ValueError(f"{who!r} is not a Slack user id (U…/W…) or user-group id (S…)")
        return v


class MitigationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: NodeLimits = NodeLimits()
    drain: DrainLimits = DrainLimits()
    scale: ScaleLimits = ScaleLimits()
    approval: ApprovalRule = ApprovalRule()
    """The rule for every playbook not named in `approvals`."""
    approvals: dict[str, ApprovalRule] = Field(default_factory=dict)
    """Per playbook name, replacing `approval` for it."""
    impersonate: dict[str, str] = Field(default_factory=dict)
    """Slack user id → Kubernetes user. When set, every write carries Impersonate-User for the person who
    requested it, and a requester with no mapping is refused."""
    argocd_namespace: str = "argocd"
    """Where Argo CD Applications live unless `namespace=` says otherwise."""

    def rule(self, playbook: str) -> ApprovalRule:
        return self.approvals.get(playbook, self.approval)


class ReminderConfig(BaseModel):
    """How firebreak chases status updates, missing roles and forgotten incidents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repeat_minutes: int = Field(default=10, ge=1, le=24 * 60)
    """After a reminder nobody answered, the next one comes this much later."""
    escalate_after: int = Field(default=2, ge=1, le=10)
    """Reminders missed in a row (or nudges about a missing role) before the escalation target is called."""
    escalation: str | None = None
    """Who is called on escalation: a Slack user (U…/W…) or user group (S…). Unset: the channel is told only."""
    no_ic_minutes: int = Field(default=5, ge=1, le=24 * 60)
    """An incident with no IC (or a required role empty) this long after it was declared gets a nudge."""
    required_roles: tuple[str, ...] = ()
    """Roles besides the IC that must be filled (e.g. comms for SEV1); nudged like a missing IC."""
    stale_hours: int = Field(default=24, ge=1, le=24 * 30)
    """An open incident with no activity this long gets a daily nudge to update or resolve it."""
    stale_hour: int = Field(default=10, ge=0, le=23)
    """The hour of the day (in `timezone`) the daily nudge comes."""
    timezone: str = "UTC"
    """The team's timezone (IANA name, e.g. Europe/Berlin) for the daily nudge."""
    snooze_minutes: tuple[int, ...] = (10, 30)
    """The snooze buttons on a reminder."""
    late_seconds: int = Field(default=60, ge=1)
    """A reminder that fires this late (no firebreak was running when it came due) says how late it is."""

    @field_validator("escalation")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[UWS][A-Z0-9]{2,}", v):
            raise ValueError(f"{v!r} is not a Slack user id (U…/W…) or user-group id (S…)")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA timezone name such as Europe/Berlin") from None
        return v

    @field_validator("snooze_minutes")
    @classmethod
    def _snoozes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or len(v) > 3 or any(m < 1 or m > 24 * 60 for m in v):
            raise ValueError("snooze_minutes: one to three durations between 1 and 1440 minutes")
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class IncidentConfig(BaseModel):
    """How a team runs incidents. Every field has a default, so the YAML file is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = "/incident"
    """The slash command registered in the Slack app."""
    channel_prefix: str = "inc"
    """Incident channels are named <prefix>-<yyyymmdd>-<slug>."""
    severities: tuple[SeverityLevel, ...] = DEFAULT_SEVERITIES
    default_severity: int = 3
    """Severity used when declare names none."""
    roles: tuple[str, ...] = ("comms", "ops", "scribe")
    """Roles besides the incident commander (IC), which always exists."""
    mitigation: MitigationConfig = MitigationConfig()
    """Limits and approvals for mitigation playbooks."""
    reminders: ReminderConfig = ReminderConfig()
    """Update reminders, snoozes, escalation and nudges."""
    alerts: AlertConfig = AlertConfig()
    """How Alertmanager's alerts become incidents: routes, scope, inhibition, alert quality."""
    evidence: EvidenceConfig = EvidenceConfig()
    """The evidence panel's golden signals and layer checks (PromQL templates filled with the scope labels)."""
    guide: GuideConfig = GuideConfig()
    """`/incident guide`: scenarios added to the shipped stabilizer catalogue (deploy/catalogue.yaml)."""

    @field_validator("command")
    @classmethod
    def _command_shape(cls, v: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", v):
            raise ValueError("command must look like /incident (lowercase letters, digits, - or _)")
        return v

    @field_validator("channel_prefix")
    @classmethod
    def _prefix_shape(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,20}", v):
            raise ValueError("channel_prefix must be lowercase letters, digits, - or _, at most 21 characters")
        return v

    @field_validator("roles")
    @classmethod
    def _roles_shape(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for role in v:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,19}", role):
                raise ValueError(f"role {role!r} must be a lowercase word (letters, digits, - or _)")
        if IC in v:
            raise ValueError(f"'{IC}' is built in; list only the other roles")
        if len(set(v)) != len(v):
            raise ValueError("roles must not repeat")
        return v

    @model_validator(mode="after")
    def _ladder(self) -> IncidentConfig:
        levels = [s.level for s in self.severities]
        if not levels:
            raise ValueError("severities must list at least one level")
        if sorted(levels) != list(range(1, len(levels) + 1)):
            raise ValueError("severity levels must be 1..N with no gaps or repeats")
        if self.default_severity not in levels:
            raise ValueError(f"default_severity {self.default_severity} is not one of the levels {levels}")
        unknown = [r for r in self.reminders.required_roles if r not in self.roles]
        if unknown:
            raise ValueError(f"reminders.required_roles names roles that are not configured: {unknown}")
        return self

    def check_role(self, role: str) -> None:
        if role not in (IC, *self.roles):
            raise UsageError(f"Unknown role {role!r}: roles are {', '.join((IC, *self.roles))}.")

    def cadence(self, level: int) -> timedelta:
        """How long after an update (or the declare) the next one is due at this severity."""
        return timedelta(minutes=self.severity(level).update_every_minutes)

    def severity(self, level: int) -> SeverityLevel:
        for s in self.severities:
            if s.level == level:
                return s
        raise KeyError(level)

    @property
    def max_level(self) -> int:
        return len(self.severities)


def load_config(path: Path | None) -> IncidentConfig:
    """Read the YAML file, turning every problem into one readable ConfigError."""
    if path is None:
        return IncidentConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"FIREBREAK_CONFIG: {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"FIREBREAK_CONFIG: {path} is not valid YAML: {exc}") from None
    if raw is None:
        return IncidentConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"FIREBREAK_CONFIG: {path} must hold a mapping at the top level")
    try:
        return IncidentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"FIREBREAK_CONFIG: {path}: {problems}") from None
