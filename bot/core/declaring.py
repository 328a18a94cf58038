"""Declaring an incident and provisioning it: record first, then channel, invites, topic, summary, announcement."""

from __future__ import annotations

from datetime import timedelta

from bot.core.changes import Outcome, change_incident, get_incident
from bot.core.config import IncidentConfig
from bot.core.errors import ChannelNameTaken, ChatError, Conflict, UsageError
from bot.core.metrics import Metrics
from bot.core.ports import Chat, Clock, IncidentStore, LockKind
from bot.core.publishing import Publisher, channel_of
from bot.core.refs import channel_name, slugify
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
CHANNEL_NAME_ATTEMPTS = 20
PROVISION_LOCK_SECONDS = 60


class Declaring:
    def __init__(
        self,
        store: IncidentStore,
        chat: Chat,
        config: IncidentConfig,
        clock: Clock,
        publisher: Publisher,
        *,
        announce_channel: str | None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.chat = chat
        self.config = config
        self.clock = clock
        self.publisher = publisher
        self.announce_channel = announce_channel
        self.metrics = metrics

    async def declare(
        self,
        *,
        title: str,
        actor: Actor,
        severity: int | None = None,
        description: str = "",
    ) -> Outcome:
        """Record the incident, then open its channel and announce it.

        A repeat by the same actor with the same title within 10 minutes resumes; it never duplicates.
        A person who declares becomes IC; a source (an alert) leaves the role for a person to take.
        """
        title = " ".join(title.split())
        if not title:
            raise UsageError(
                f"An incident needs a title: `{self.config.command} declare [sev1-sev{self.config.max_level}] <title>`"
            )
        if len(title) > MAX_TITLE:
            raise UsageError(f"Keep the title under {MAX_TITLE} characters; put detail in the description or a note.")
        level = self.config.default_severity if severity is None else severity
        self.config.severity(level)
        new_id = await self.store.allocate_id()
        bound = await self.store.bind_declare(
            f"{actor.kind}:{actor.id}", slugify(title), new_id, DECLARE_DEDUPE_SECONDS
        )
        existing = await self.store.get(bound)
        created = existing is None
        if existing is None:
            try:
                existing = await self.store.insert(*self._new(bound, title, description, level, actor))
            except Conflict:
                existing = await get_incident(self.store, bound)
                created = False
            if created and self.metrics:
                self.metrics.incidents_declared.labels(str(level)).inc()
        outcome = await self.provision(existing.id)
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
            next_update_due=now + timedelta(minutes=self.config.severity(level).update_every_minutes),
        )
        events = [TimelineEvent(at=now, actor=actor, payload=Declared(title=title, severity=level))]
        if ic:
            events.append(TimelineEvent(at=now, actor=actor, payload=RoleAssigned(role=IC, user=ic)))
        return incident, events

    async def provision(self, incident_id: int) -> Outcome:
        """Each step records its result, so a retry after a crash or a duplicate request only does what is missing."""
        warnings: list[str] = []
        soft, warn = self.publisher.soft, self.publisher.warn
        async with self.store.lock(LockKind.PROVISION, incident_id, timeout_seconds=PROVISION_LOCK_SECONDS):
            incident = await get_incident(self.store, incident_id)
            if incident.channel_id is None:
                channel_id, name = await self._create_channel(incident)
                created = TimelineEvent(
                    at=self.clock(), payload=ChannelCreated(channel_id=channel_id, channel_name=name)
                )
                incident, _ = await change_incident(
                    self.store,
                    incident_id,
                    lambda i: (i.model_copy(update={"channel_id": channel_id, "channel_name": name}), [created]),
                    incident,
                )
                members = list(dict.fromkeys(u for u in (incident.declared_by.user_id, incident.ic) if u))
                if members:
                    await soft(incident, warnings, "invite you to the channel", self.chat.invite(channel_id, members))
                await soft(incident, warnings, "set the channel topic", self.chat.set_topic(channel_id, incident))
            channel = channel_of(incident)
            if incident.summary_ts is None:
                ts = await self.chat.post(channel, Post(kind=PostKind.SUMMARY, incident=incident))
                incident, _ = await change_incident(
                    self.store, incident_id, lambda i: (i.model_copy(update={"summary_ts": ts}), []), incident
                )
            if incident.announce_channel and incident.announce_ts is None:
                where = incident.announce_channel
                try:
                    where = await self.chat.resolve_channel(incident.announce_channel)
                    ts = await self.chat.post(where, Post(kind=PostKind.ANNOUNCEMENT, incident=incident))
                except ChatError as exc:
                    await warn(incident, warnings, f"Couldn't announce in {incident.announce_channel}: {exc}")
                else:
                    incident, _ = await change_incident(
                        self.store,
                        incident_id,
                        lambda i: (i.model_copy(update={"announce_channel": where, "announce_ts": ts}), []),
                        incident,
                    )
        return Outcome(incident, warnings=warnings)

    async def _create_channel(self, incident: Incident) -> tuple[str, str]:
        for attempt in range(1, CHANNEL_NAME_ATTEMPTS + 1):
            name = channel_name(self.config.channel_prefix, incident.declared_at, incident.title, attempt)
            try:
                return await self.chat.create_channel(name), name
            except ChannelNameTaken:
                continue
        first = channel_name(self.config.channel_prefix, incident.declared_at, incident.title)
        raise ChatError(
            f"Every channel name from #{first} to #{first}-{CHANNEL_NAME_ATTEMPTS} is taken. "
            f"Archive old channels or declare with a more specific title; {incident.ref} is recorded and a "
            "repeat of the same declare will pick it up.",
            code="name_taken",
            method="conversations.create",
        )
