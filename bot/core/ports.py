"""The side effects the core needs, as small Protocols; adapters in bot/adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from bot.core.jobs import Job
from bot.models import Alert, AuditEntry, ChatMessage, Incident, Mitigation, Post, Result, TimelineEvent, Triage
from bot.models.chart import Chart
from bot.models.plans import ObjectRef, PatchType

__all__ = ["ObjectRef", "PatchType"]  # re-exported: the cluster port speaks in them


class LockKind(StrEnum):
    """Locks shared by every firebreak process; the store turns (kind, incident) into a key."""

    PROVISION = "provision"
    """Creating an incident's channel, summary and announcement."""
    UNDO = "undo"
    """Asking for the undo of a mitigation (one request per click, however many clicks)."""
    ALERTS = "alerts"
    """Deciding where an alert no incident knows goes (one decision at a time, across replicas)."""
    ALERT_DIGEST = "alert-digest"
    """Posting an incident's storm message (one message, however many jobs)."""


class IncidentStore(Protocol):
    """Durable incident state. Writes are atomic: a record, its index entries and its timeline events land together."""

    async def ping(self) -> None:
        """Raise if the store is unreachable."""

    async def bind_declare(self, actor: str, fingerprint: str, ttl_seconds: int) -> tuple[int, bool]:
        """The incident a declare (who, which title) is bound to, and whether its id was just allocated.

        A repeat within the ttl gets the same id, unless that incident was resolved since; an id is
        allocated only for an incident that will be created.
        """

    async def insert(self, incident: Incident, events: Sequence[TimelineEvent], op: str) -> Incident:
        """Create the record; Conflict if it exists, AlreadyApplied if `op` created it before."""

    async def save(self, incident: Incident, events: Sequence[TimelineEvent], op: str) -> Incident:
        """Store `incident` if nobody saved since it was read (same version); raise Conflict otherwise.

        AlreadyApplied (with the events saved then) if `op` was applied before: nothing is written twice.
        """

    async def applied(self, incident_id: int, op: str) -> list[TimelineEvent] | None:
        """The events `op` saved on this incident, or None if it never changed it."""

    async def get(self, incident_id: int) -> Incident | None: ...

    async def by_channel(self, channel_id: str) -> Incident | None: ...

    async def by_channel_name(self, name: str) -> Incident | None: ...

    async def list_open(self) -> list[Incident]: ...

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        """Events ordered by when they happened (pins carry their message's original time)."""

    async def append(self, incident_id: int, event: TimelineEvent, op: str) -> bool:
        """Add a timeline event that changes nothing else (notes, warnings), once per op; True if added."""

    async def pin(self, incident_id: int, message_ts: str, source: str, event: TimelineEvent) -> bool:
        """`source` (Slack's pin, or one person's :pushpin:) pins a message; `event` is appended only when
        nothing pinned it before. True if appended."""

    async def unpin(self, incident_id: int, message_ts: str, source: str, event: TimelineEvent) -> bool:
        """`source` no longer pins the message; `event` is appended only when nothing pins it any more."""

    async def reserve_channel_name(self, name: str, incident_id: int) -> bool:
        """Reserve a channel name for an incident; True if it is free or already this incident's."""

    def lock(
        self, kind: LockKind, incident_id: int, owner: str, ttl_seconds: float
    ) -> AbstractAsyncContextManager[None]:
        """A lock shared by every firebreak process, held by `owner` (an op key), expiring after the ttl.

        Never waited for: Busy if someone else holds it. The same owner (an op resumed after a crash) gets it.
        """


class MitigationStore(Protocol):
    """Mitigation requests, the steps of their runs, target locks and the audit stream."""

    async def create(self, mitigation: Mitigation, op: str) -> Mitigation:
        """Store a new request, numbering it within its incident; the one `op` created before, if it did."""

    async def get(self, incident_id: int, number: int) -> Mitigation | None: ...

    async def applied(self, incident_id: int, op: str) -> bool:
        """Whether `op` created or saved one of the incident's requests (a job resumed after a crash)."""

    async def of_incident(self, incident_id: int) -> list[Mitigation]:
        """Every request of the incident, oldest first."""

    async def save(self, mitigation: Mitigation, op: str) -> Mitigation:
        """Compare-and-set on `version`: Conflict if someone saved since it was read, AlreadyApplied if `op`
        saved it before."""

    async def step(self, incident_id: int, number: int, index: int, result: Result | None) -> None:
        """Record step `index` of a run: None when its API call is about to be made, then its result."""

    async def steps(self, incident_id: int, number: int) -> dict[int, Result | None]:
        """The steps recorded so far: a None value is a call that started and never reported back."""

    async def lock_targets(self, targets: Sequence[str], owner: str, ttl_seconds: float) -> str | None:
        """Lock every target (all or none) for `owner`; the target someone else holds, if any (nothing locked).

        The same owner may take its own locks again (a run resumed by the same op)."""

    async def renew_targets(self, targets: Sequence[str], owner: str, ttl_seconds: float) -> bool:
        """Extend `owner`'s locks; False if any was lost."""

    async def unlock_targets(self, targets: Sequence[str], owner: str) -> None: ...

    async def audit(self, entry: AuditEntry, key: str) -> bool:
        """Append to the incident's audit stream once per `key`; False if that key was appended before."""

    async def audit_log(self, incident_id: int, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Newest first."""


class AlertStore(Protocol):
    """What firebreak remembers of alerts: which incident each alert and alert group went to, which alerts
    fire, and the counts its storm message shows."""

    async def incident_of(self, key: str) -> int | None:
        """The incident an alert (`alert:<fingerprint>`) or a group (`group:<key>`) was attached to."""

    async def link(self, key: str, incident_id: int) -> None: ...

    async def fire(self, incident_id: int, alert: Alert) -> None:
        """The alert fires (for the incident, and for inhibition)."""

    async def resolve(self, incident_id: int, alert: Alert) -> int | None:
        """It resolved: how many of the incident's alerts still fire, or None if it wasn't firing."""

    async def firing(self) -> list[Alert]:
        """Every alert firing now, across incidents (inhibition sources)."""

    async def tally(self, bucket: str, occurrence: str, label: str) -> bool:
        """Count `occurrence` under `label` (name and scope, or a flag) once in `bucket` (an incident's storm
        message, a triage group); True if it was new."""

    async def tallies(self, bucket: str) -> dict[str, int]: ...

    async def mark(self, queue: str, member: str) -> None:
        """Something to show later (a triage group whose message is behind)."""

    async def take(self, queue: str) -> tuple[str | None, int]:
        """One marked member (None if none) and how many stay marked."""

    async def remember(self, key: str, value: str, *, ttl_seconds: int | None = None) -> str:
        """Keep `value` under `key` unless something is kept there already; what is kept (a storm message's
        ts, a triaged alert)."""

    async def recall(self, key: str) -> str | None: ...

    async def collect(self, bucket: str, alert: Alert) -> None:
        """Keep the alert (its latest state per fingerprint) with others of a bucket (a triage group)."""

    async def collected(self, bucket: str) -> list[Alert]: ...

    async def put(self, key: str, value: str, *, ttl_seconds: int | None = None) -> None:
        """Keep `value` under `key`, replacing what was there."""

    async def forget(self, *keys: str) -> None:
        """Drop what is kept under these keys (`remember`/`put`), and the tallies of these buckets."""


class JobQueue(Protocol):
    """Durable jobs with due times and leases: any replica claims what is due; a crashed one's lease runs out.

    Times are wall-clock (the worker's `now`), independent of the incident clock.
    """

    async def enqueue(self, job: Job, due: datetime, *, valid_until: datetime | None = None) -> bool:
        """Record `job` to run at `due`; False (and nothing changes) if a job with its id exists or existed recently.

        With `valid_until`, the store refuses (TooLate) to record it after that time, by its own clock: a
        request that reaches a store late (it was frozen, or the request was retried) is never recorded
        after its sender gave up on it and told the user nothing was done. NotSent when the store could
        not be reached at all; any other failure leaves it unknown whether the job was recorded.
        """

    async def ping(self) -> None:
        """Raise unless the queue's store answers."""

    async def exists(self, job_id: str) -> bool:
        """Whether a job with this id was recorded (and is queued, running or recently done)."""

    async def claim(self, owner: str, now: datetime, lease_seconds: float) -> Job | None:
        """Lease the most overdue job (a due one, or one whose lease ran out) to `owner`; counts the attempt."""

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        """Extend a lease still held by `owner`; False if it was lost."""

    async def complete(self, job_id: str, owner: str) -> None:
        """Done: never run again. Its id keeps refusing duplicates for a while."""

    async def release(self, job_id: str, owner: str, due: datetime) -> None:
        """Give the job back, to be run again at `due` (a transient failure, or a shutdown)."""

    async def next_due(self) -> datetime | None:
        """When the next job (or lease expiry) is due; None when there is no job at all."""

    async def pending(self, due_by: datetime | None = None) -> int:
        """Jobs not yet done, running or not; with `due_by`, only those due (or leased until) by then."""

    async def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when any replica enqueues a job."""


class Chat(Protocol):
    """The chat platform, in the terms the incident process needs. Failures raise ChatError."""

    async def resolve_channel(self, ref: str) -> str:
        """A channel id for `ref` (an id, or a #name); ChatError if there is no such channel."""

    async def create_channel(self, name: str, *, adopt: bool = False) -> str:
        """Create a public channel and return its id; ChannelNameTaken if the name exists.

        With `adopt`, a channel of that name that firebreak itself created is returned instead: an earlier
        attempt created it and crashed before recording it.
        """

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> None: ...

    async def set_topic(self, channel_id: str, incident: Incident) -> None:
        """Show the incident's state (severity, status, IC, title) as the channel topic."""

    async def post(self, channel: str, post: Post, *, key: str | None = None, recover: bool = False) -> str:
        """Post and return the message timestamp.

        `key` travels with the message; with `recover`, a message already posted with that key (by an
        earlier attempt that crashed before recording it) is found and returned instead of posting again.
        """

    async def edit(self, channel: str, ts: str, post: Post) -> None: ...

    async def fetch_message(self, channel: str, ts: str) -> ChatMessage | None: ...

    async def post_triage(self, channel: str, triage: Triage, *, key: str) -> str:
        """Post an alert group in the triage channel (keyed: a repeat finds it) and return its ts."""

    async def edit_triage(self, channel: str, ts: str, triage: Triage) -> None: ...

    async def group_members(self, group_id: str) -> set[str]:
        """The users in a user group (S…), for approval rules that name groups."""

    async def upload_image(self, filename: str, title: str, alt_text: str, data: bytes) -> str:
        """Upload an image shared in no channel (private to firebreak, shown by its id in a post) and return the
        file id; ChatError if the platform refuses it."""


class ChartRenderer(Protocol):
    async def png(self, chart: Chart) -> bytes:
        """The chart drawn as a PNG; ChartError if drawing fails or takes too long."""


class Clock(Protocol):
    def __call__(self) -> datetime:
        """Now, timezone-aware UTC."""


def utcnow() -> datetime:
    """The real Clock."""
    return datetime.now(UTC)


# ---- the cluster, for mitigation playbooks ------------------------------------------------------------


class Cluster(Protocol):
    """A Kubernetes API server, as playbooks use it. Objects are the API's own JSON.

    Failures raise ClusterError with the API's status code and message (409 conflict, 404, 429 for an
    eviction a PodDisruptionBudget blocks), so a playbook can report each object's result.
    """

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None: ...

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...

    async def patch(
        self,
        ref: ObjectRef,
        body: Any,
        *,
        patch_type: PatchType,
        dry_run: bool = False,
        as_user: str | None = None,
    ) -> dict[str, Any]:
        """Apply a patch; with dry_run the server validates and answers without persisting (dryRun=All).

        `as_user`: impersonate that user, so the API server's audit log and RBAC see the person who asked."""

    async def evict(self, pod: ObjectRef, *, dry_run: bool = False, as_user: str | None = None) -> None:
        """Evict a pod through the Eviction API, which honours PodDisruptionBudgets (429 when one forbids it)."""


class Clusters(Protocol):
    """The clusters firebreak may act on, by kubeconfig context."""

    async def get(self, context: str | None = None) -> NamedCluster:
        """The named cluster, or the default one; ConfigError when there is no such context."""


class NamedCluster(Cluster, Protocol):
    name: str
    """Its kubeconfig context: shown in plans, errors and the audit."""


# ---- metrics, for the evidence panel --------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One series' value at one instant."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series over a time range."""

    labels: Mapping[str, str]
    points: tuple[tuple[datetime, float], ...] = field(default_factory=tuple)


class MetricsSource(Protocol):
    """A Prometheus-compatible query API. Failures raise MetricsError naming the query and the reason."""

    async def instant(self, query: str, at: datetime | None = None) -> list[Sample]: ...

    async def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> list[Series]: ...
