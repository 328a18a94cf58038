"""Every Redis key firebreak writes, in one place. Ids are deterministic so repeats land on the same key."""

from __future__ import annotations

from bot.core.ports import LockKind


class Keys:
    def __init__(self, prefix: str = "fb") -> None:
        self.prefix = prefix

    def incident(self, incident_id: int | str) -> str:
        return f"{self.prefix}:incident:{incident_id}"

    def timeline(self, incident_id: int | str) -> str:
        return f"{self.prefix}:incident:{incident_id}:timeline"

    def pin_sources(self, incident_id: int | str, message_ts: str) -> str:
        """What pins a message now: Slack's pin, and each person's :pushpin:."""
        return f"{self.prefix}:incident:{incident_id}:pin:{message_ts}"

    def channel(self, channel_id: str) -> str:
        return f"{self.prefix}:channel:{channel_id}"

    def channel_name(self, name: str) -> str:
        return f"{self.prefix}:channel-name:{name}"

    def applied(self, incident_id: int | str) -> str:
        """Op keys already applied to an incident, with the events each saved: a repeated op applies nothing."""
        return f"{self.prefix}:incident:{incident_id}:ops"

    def channel_claim(self, name: str) -> str:
        """Which incident may create a channel of this name, so two incidents never adopt each other's channel."""
        return f"{self.prefix}:channel-claim:{name}"

    def declare_binding(self, actor: str, fingerprint: str) -> str:
        """Who declared which title: a repeat within the window resumes that incident instead of opening another."""
        return f"{self.prefix}:bind:declare:{actor}:{fingerprint}"

    def mitigation(self, incident_id: int, number: int) -> str:
        return f"{self.prefix}:incident:{incident_id}:mitigation:{number}"

    def mitigation_seq(self, incident_id: int) -> str:
        return f"{self.prefix}:incident:{incident_id}:mitigation-seq"

    def mitigation_ops(self, incident_id: int) -> str:
        """Op keys that created or saved a mitigation request: a repeated op writes nothing twice."""
        return f"{self.prefix}:incident:{incident_id}:mitigation-ops"

    def mitigation_steps(self, incident_id: int, number: int) -> str:
        """A run's steps by index: empty while its API call is in flight, then the call's result."""
        return f"{self.prefix}:incident:{incident_id}:mitigation:{number}:steps"

    def target_lock(self, target: str) -> str:
        """One run at a time per Kubernetes object (`<cluster>/<kind>/<namespace>/<name>`)."""
        return f"{self.prefix}:lock:target:{target}"

    def audit(self, incident_id: int) -> str:
        """The incident's append-only audit stream of mitigation steps."""
        return f"{self.prefix}:incident:{incident_id}:audit"

    def audit_keys(self, incident_id: int) -> str:
        """Keys of the audit entries appended, so a repeated step appends nothing twice."""
        return f"{self.prefix}:incident:{incident_id}:audit-keys"

    def alert_link(self, key: str) -> str:
        """Which incident an alert (`alert:<fingerprint>`) or alert group (`group:<key>`) went to."""
        return f"{self.prefix}:alerts:link:{key}"

    @property
    def alerts_firing(self) -> str:
        """Every firing alert (fingerprint -> alert JSON): inhibition sources."""
        return f"{self.prefix}:alerts:firing"

    def incident_firing(self, incident_id: int) -> str:
        return f"{self.prefix}:incident:{incident_id}:alerts-firing"

    def alert_tally(self, bucket: str) -> str:
        """Counts by alert name and scope for a storm message (`incident:<id>`) or a triage group (`triage:<id>`)."""
        return f"{self.prefix}:alerts:tally:{bucket}"

    def alert_seen(self, bucket: str) -> str:
        """Occurrences already counted there, so a repeated webhook counts nothing."""
        return f"{self.prefix}:alerts:seen:{bucket}"

    def alert_memo(self, key: str) -> str:
        return f"{self.prefix}:alerts:memo:{key}"

    def post_slot(self, channel: str) -> str:
        """When the channel's next message may be posted (one a second per channel, across replicas)."""
        return f"{self.prefix}:slack:slot:{channel}"

    def lock(self, kind: LockKind, incident_id: int) -> str:
        return f"{self.prefix}:lock:{kind.value}:{incident_id}"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    @property
    def job_prefix(self) -> str:
        return f"{self.prefix}:job:"

    @property
    def jobs_due(self) -> str:
        """Job ids scored by when they are due: queued ones by their due time, leased ones by the lease's end."""
        return f"{self.prefix}:jobs:due"

    @property
    def jobs_dead(self) -> str:
        """Jobs set aside: unreadable, or their workers kept dying under them. Kept for a person to look at."""
        return f"{self.prefix}:jobs:dead"

    @property
    def jobs_wake(self) -> str:
        """Pub/sub channel: a job was enqueued, so sleeping workers on every replica look at the queue."""
        return f"{self.prefix}:jobs:wake"

    @property
    def sequence(self) -> str:
        return f"{self.prefix}:seq:incident"

    @property
    def open_set(self) -> str:
        return f"{self.prefix}:open"
