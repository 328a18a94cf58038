"""Declaring an incident and provisioning it: record first, then channel, invites, topic, summary, announcement."""

from __future__ import annotations

from bot.core.changes import Outcome, change_incident, get_incident
from bot.core.config import IncidentConfig
from bot.core.deps import Deps, Verbs
from bot.core.errors import AlreadyApplied, Busy, ChannelNameTaken, ChatError, Conflict, UsageError
from bot.core.jobs import Op
from bot.core.ports import LockKind
from bot.core.publishing import Publisher, channel_of
from bot.core.refs import channel_name, title_fingerprint
from bot.models import (
    IC,
    MAX_TEXT,
    MAX_TITLE,
    Actor,
    ChannelCreated,
    Declared,
    Incident,
    Post,
    PostKind,
    RoleAssigned,
    TimelineEvent,
)

DECLARE_DEDUPE_SECONDS = 600
ROOT_CAUSE_SECONDS = 30 * 24 * 3600
"""How long alerts of one root cause keep going to the same (open) incident."""
CHANNEL_NAME_ATTEMPTS = 20
PROVISION_LOCK_SECONDS = 60


class Declaring(Verbs):
    def __init__(self, deps: Deps, publisher: Publisher, *, announce_channel: str | None) -> None:
        super().__init__(deps)
        self.publisher = publisher
        self.announce_channel = announce_channel

    async def declare(
        self,
        *,
        title: str,
        actor: Actor,
        severity: int | None = None,
        description: str = "",
        op: Op | None = None,
        binding: str | None = None,
        extra: dict[str, object] | None = None,
        provision: bool = True,
    ) -> Outcome:
        """Record the incident, then open its channel and announce it.

        A repeat by the same actor with the same title within 10 minutes resumes that incident (unless it
        was resolved since); it never duplicates. A person who declares becomes IC; a source (an alert)
        leaves the role for a person to take.
        """
        op = op or Op.fresh()
        title = check_title(title, self.config)
        level = self.config.default_severity if severity is None else severity
        self.config.severity(level)
        if binding is None:
            actor_key = f"{actor.kind}:{actor.id}"
            bound, _ = await self.store.bind_declare(actor_key, title_fingerprint(title), DECLARE_DEDUPE_SECONDS)
        else:  # one incident per root cause (an alert's scope or group), for as long as it stays open
            bound, _ = await self.store.bind_declare("root", binding, ROOT_CAUSE_SECONDS)
        existing = await self.store.get(bound)
        created = False
        if existing is None:
            try:
                new, events = self._new(bound, title, description, level, actor)
                new = new.model_copy(update=extra or {})
                existing = await self.store.insert(new, events, op.key)
                created = True
                if self.metrics:
                    self.metrics.incidents_declared.labels(str(level)).inc()
            except AlreadyApplied:  # this op inserted it before a crash
                existing, created = await get_incident(self.store, bound), True
            except Conflict:
                existing = await get_incident(self.store, bound)
        elif op.recovering:
            created = await self.store.applied(bound, op.key) is not None
        if not provision:  # the caller provisions it later (outside a lock it holds)
            return Outcome(existing, changed=created)
        try:
            outcome = await self.provision(existing.id, op, recover=op.recovering or not created)
        except Busy:
            if created:
                raise
            # Someone's earlier declare of the same incident is still setting it up: that one finishes it.
            return Outcome(existing, changed=False)
        outcome.changed = created
        return outcome

    def _new(
        self, incident_id: int, title: str, description: str, level: int, actor: Actor
    ) -> tuple[Incident, list[TimelineEvent]]:
        now = self.clock()
        ic = actor.user_id
        incident = Incident(
            id=incident_id,
            title=title,
            description=description.strip()[:MAX_TEXT],
            severity=level,
            declared_by=actor,
            declared_at=now,
            roles={IC: ic} if ic else {},
            announce_channel=self.announce_channel,
            next_update_due=now + self.config.cadence(level),
        )
        events = [TimelineEvent(at=now, actor=actor, payload=Declared(title=title, severity=level))]
        if ic:
            events.append(TimelineEvent(at=now, actor=actor, payload=RoleAssigned(role=IC, user=ic)))
        return incident, events

    async def provision(self, incident_id: int, op: Op, *, recover: bool = False) -> Outcome:
        """Channel, invites, topic, summary, announcement: each recorded on the incident once done.

        With `recover` (an earlier attempt may have crashed midway), a channel of the reserved name that
        firebreak created is adopted and posts are looked up by key before being sent again, so a resumed
        declare repeats nothing. The provisioning lock is held by `op`: the same op resumed after a crash
        takes it back at once, and another request is told rather than kept waiting.
        """
        warnings: list[str] = []
        soft, warn = self.publisher.soft, self.publisher.warn
        async with self.store.lock(LockKind.PROVISION, incident_id, op.key, PROVISION_LOCK_SECONDS):
            incident = await get_incident(self.store, incident_id)
            set_up_channel = recover  # invites and topic: again when resuming, they are idempotent
            if incident.channel_id is None:
                op.check()
                channel_id, name = await self._create_channel(incident, adopt=recover)
                created = TimelineEvent(
                    at=self.clock(), payload=ChannelCreated(channel_id=channel_id, channel_name=name)
                )
                incident, _ = await change_incident(
                    self.store,
                    incident_id,
                    lambda i: (
                        None
                        if i.channel_id
                        else (i.model_copy(update={"channel_id": channel_id, "channel_name": name}), [created])
                    ),
                    op.sub("channel"),
                )
                set_up_channel = True
            channel = channel_of(incident)
            if set_up_channel:
                members = list(dict.fromkeys(u for u in (incident.declared_by.user_id, incident.ic) if u))
                if members:
                    await soft(incident, warnings, "invite you to the channel", self.chat.invite(channel, members))
                await soft(incident, warnings, "set the channel topic", self.chat.set_topic(channel, incident))
            if incident.summary_ts is None:
                op.check()
                summary = Post(kind=PostKind.SUMMARY, incident=incident)
                ts = await self.chat.post(channel, summary, key=f"{incident.ref}:summary", recover=recover)
                incident, _ = await change_incident(
                    self.store,
                    incident_id,
                    lambda i: None if i.summary_ts else (i.model_copy(update={"summary_ts": ts}), []),
                    op.sub("summary"),
                )
            if incident.announce_channel and incident.announce_ts is None:
                try:
                    incident = await self._announce(incident, op, recover=recover)
                except ChatError as exc:
                    if exc.transient:
                        raise  # run again once Slack answers; the post is keyed
                    await warn(incident, warnings, f"Couldn't announce in {incident.announce_channel}: {exc}")
        return Outcome(incident, warnings=warnings)

    async def _announce(self, incident: Incident, op: Op, *, recover: bool) -> Incident:
        assert incident.announce_channel is not None
        where = await self.chat.resolve_channel(incident.announce_channel)
        op.check()
        post = Post(kind=PostKind.ANNOUNCEMENT, incident=incident)
        ts = await self.chat.post(where, post, key=f"{incident.ref}:announcement", recover=recover)
        update = {"announce_channel": where, "announce_ts": ts}
        saved, _ = await change_incident(
            self.store,
            incident.id,
            lambda i: None if i.announce_ts else (i.model_copy(update=update), []),
            op.sub("announcement"),
        )
        return saved

    async def _create_channel(self, incident: Incident, *, adopt: bool) -> tuple[str, str]:
        for attempt in range(1, CHANNEL_NAME_ATTEMPTS + 1):
            name = channel_name(self.config.channel_prefix, incident, attempt)
            if not await self.store.reserve_channel_name(name, incident.id):
                continue  # another incident is creating (or created) a channel of this name
            try:
                return await self.chat.create_channel(name, adopt=adopt), name
            except ChannelNameTaken:
                continue
        first = channel_name(self.config.channel_prefix, incident)
        raise ChatError(
            f"Every channel name from #{first} to #{first}-{CHANNEL_NAME_ATTEMPTS} is taken. "
            f"Archive old channels or declare with a more specific title; {incident.ref} is recorded and a "
            "repeat of the same declare will pick it up.",
            code="name_taken",
            method="conversations.create",
        )


def check_title(title: str, config: IncidentConfig) -> str:
    """The title as kept: whitespace folded; refused when empty or too long (before the ack, and here)."""
    title = " ".join(title.split())
    if not title:
        raise UsageError(f"An incident needs a title: `{config.command} declare [sev1-sev{config.max_level}] <title>`")
    if len(title) > MAX_TITLE:
        raise UsageError(
            f"Keep the title under {MAX_TITLE} characters (this one has {len(title)}); "
            "put detail in the description or a note."
        )
    return title
