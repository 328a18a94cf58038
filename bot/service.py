"""The incident lifecycle: each change lands atomically with its timeline event, then is shown in chat."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.config import IncidentConfig
from bot.errors import (
    ChannelNameTaken,
    ChatError,
    Conflict,
    FirebreakError,
    InvalidTransition,
    NotFound,
    UsageError,
)
from bot.metrics import Metrics
from bot.models import IC, ChatMessage, EventKind, Incident, Post, PostKind, Status, TimelineEvent
from bot.ports import Chat, Clock, IncidentStore
from bot.refs import IncidentRef, channel_name, slugify

log = logging.getLogger(__name__)

MAX_TITLE = 150
MAX_TEXT = 3000
DECLARE_DEDUPE_SECONDS = 600
CHANNEL_NAME_ATTEMPTS = 20
REMINDER_LEASE_SECONDS = 120
TOPIC_LIMIT = 250
CHANGE_ATTEMPTS = 25

Change = Callable[[Incident], tuple[Incident, list[TimelineEvent]] | None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Outcome:
    """What a command did: the incident after it, whether anything changed, and what went only partly right."""

    incident: Incident
    changed: bool = True
    warnings: list[str] = field(default_factory=list)


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        chat: Chat,
        config: IncidentConfig,
        *,
        announce_channel: str | None,
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.chat = chat
        self.config = config
        self.announce_channel = announce_channel
        self.clock = clock

    # ---- lookups ---------------------------------------------------------------------------------

    async def get(self, incident_id: int) -> Incident:
        incident = await self.store.get(incident_id)
        if incident is None:
            raise NotFound(f"There is no incident INC-{incident_id}. `{self.config.command} list` shows open ones.")
        return incident

    async def find(self, ref: IncidentRef | None, channel_id: str | None) -> Incident:
        """The incident a command is about: the one named, else the one whose channel the command ran in."""
        cmd = self.config.command
        if ref is None:
            found = await self.store.by_channel(channel_id) if channel_id else None
            if found is None:
                raise UsageError(
                    "This channel isn't an incident channel. Run the command in the incident's channel, "
                    f"or name the incident first: `{cmd} <INC-id or #channel> ...` (`{cmd} list` shows them)."
                )
            return found
        if ref.incident_id is not None:
            return await self.get(ref.incident_id)
        found = await self.store.by_channel(ref.channel_id) if ref.channel_id else None
        if found is None and ref.channel_name:
            found = await self.store.by_channel_name(ref.channel_name)
        if found is None:
            shown = f"#{ref.channel_name}" if ref.channel_name else f"<#{ref.channel_id}>"
            raise NotFound(f"{shown} is not an incident channel firebreak knows. `{cmd} list` shows open incidents.")
        return found

    async def list_open(self) -> list[Incident]:
        return sorted(await self.store.list_open(), key=lambda i: (i.severity, i.declared_at))

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        return await self.store.timeline(incident_id)

    # ---- declare ---------------------------------------------------------------------------------

    async def declare(
        self,
        *,
        title: str,
        actor: str,
        severity: int | None = None,
        description: str = "",
        dedupe_key: str | None = None,
    ) -> Outcome:
        """Record the incident, then open its channel and announce it.

        A repeat with the same key (same person, same title, within 10 minutes) resumes; it never duplicates.
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
        key = dedupe_key or f"declare:{actor}:{slugify(title)}"
        new_id = await self.store.allocate_id()
        bound = await self.store.bind(key, new_id, DECLARE_DEDUPE_SECONDS)
        existing = await self.store.get(bound)
        created = existing is None
        if existing is None:
            now = self.clock()
            incident = Incident(
                id=bound,
                title=title,
                description=description.strip()[:MAX_TEXT],
                severity=level,
                declared_by=actor,
                declared_at=now,
                roles={IC: actor},
                announce_channel=self.announce_channel,
                next_update_due=now + self._cadence(level),
            )
            events = [
                TimelineEvent(
                    at=now,
                    kind=EventKind.DECLARED,
                    actor=actor,
                    text=f"Declared {incident.sev_label}: {title}",
                ),
                TimelineEvent(
                    at=now,
                    kind=EventKind.ROLE_ASSIGNED,
                    actor=actor,
                    text=f"<@{actor}> is incident commander",
                    data={"role": IC, "user": actor},
                ),
            ]
            try:
                existing = await self.store.insert(incident, events)
            except Conflict:
                existing = await self.get(bound)
                created = False
            if created and self.metrics:
                self.metrics.incidents_declared.labels(str(level)).inc()
        outcome = await self._provision(existing.id)
        outcome.changed = created
        return outcome

    async def _provision(self, incident_id: int) -> Outcome:
        """Each step records its result, so a retry after a crash or a duplicate request only does what is missing."""
        warnings: list[str] = []
        async with self.store.lock(f"provision:{incident_id}", timeout_seconds=60):
            incident = await self.get(incident_id)
            if incident.channel_id is None:
                channel_id, name = await self._create_channel(incident)
                incident, _ = await self._change(
                    incident_id,
                    lambda i: (
                        i.model_copy(update={"channel_id": channel_id, "channel_name": name}),
                        [
                            self._event(
                                EventKind.CHANNEL_CREATED,
                                None,
                                f"Channel #{name} created",
                                channel=channel_id,
                            )
                        ],
                    ),
                    incident,
                )
                members = list(dict.fromkeys(u for u in (incident.declared_by, incident.ic) if u))
                await self._soft(incident, warnings, "invite you to the channel", self.chat.invite(channel_id, members))
                await self._soft(
                    incident,
                    warnings,
                    "set the channel topic",
                    self.chat.set_topic(channel_id, _topic(incident)),
                )
            channel = _channel(incident)
            if incident.summary_ts is None:
                ts = await self.chat.post(
                    channel, Post(kind=PostKind.SUMMARY, incident=incident, text=_summary_text(incident))
                )
                incident, _ = await self._change(
                    incident_id, lambda i: (i.model_copy(update={"summary_ts": ts}), []), incident
                )
            if incident.announce_channel and incident.announce_ts is None:
                post = Post(kind=PostKind.ANNOUNCEMENT, incident=incident, text=_announce_text(incident))
                try:
                    ts = await self.chat.post(incident.announce_channel, post)
                except ChatError as exc:
                    await self._warn(incident, warnings, f"Couldn't announce in {incident.announce_channel}: {exc}")
                else:
                    incident, _ = await self._change(
                        incident_id, lambda i: (i.model_copy(update={"announce_ts": ts}), []), incident
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

    # ---- roles, severity, updates ----------------------------------------------------------------

    async def assign_role(self, incident: Incident, role: str, user: str, actor: str) -> Outcome:
        if role not in (IC, *self.config.roles):
            raise UsageError(f"Unknown role {role!r}: roles are {', '.join((IC, *self.config.roles))}.")

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]] | None:
            previous = i.roles.get(role)
            if previous == user:
                return None
            if role == IC and previous:
                kind, text = (
                    EventKind.IC_HANDOFF,
                    f"Incident commander handed off from <@{previous}> to <@{user}>",
                )
            else:
                kind = EventKind.ROLE_ASSIGNED
                name = "incident commander" if role == IC else role
                text = f"<@{user}> is {name}" + (f" (taking over from <@{previous}>)" if previous else "")
            data = {"role": role, "user": user} | ({"previous": previous} if previous else {})
            return i.model_copy(update={"roles": {**i.roles, role: user}}), [self._event(kind, actor, text, **data)]

        before = incident
        incident, recorded = await self._change(incident.id, change, incident)
        warnings: list[str] = []
        if recorded is not None:
            (event,) = recorded
            await self._soft(incident, warnings, f"invite <@{user}>", self.chat.invite(_channel(incident), [user]))
            await self._notify(incident, warnings, event.text)
            await self._sync(before, incident, warnings)
        return Outcome(incident, recorded is not None, warnings)

    async def set_severity(self, incident: Incident, level: int, actor: str) -> Outcome:
        self.config.severity(level)
        now = self.clock()

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]] | None:
            if i.severity == level:
                return None
            verb = "raised" if level < i.severity else "lowered"
            text = f"Severity {verb} from {i.sev_label} to SEV{level}"
            due = now + self._cadence(level)
            update: dict[str, object] = {"severity": level}
            if i.is_open and (i.next_update_due is None or due < i.next_update_due):
                update["next_update_due"] = due
            return i.model_copy(update=update), [
                self._event(EventKind.SEVERITY_CHANGED, actor, text, previous=str(i.severity), severity=str(level))
            ]

        before = incident
        incident, recorded = await self._change(incident.id, change, incident)
        warnings: list[str] = []
        if recorded is not None:
            (event,) = recorded
            verb = "raised" if level < int(event.data["previous"]) else "lowered"
            text = f"{_short(incident)}: severity {verb} to *SEV{level}* by <@{actor}>"
            await self._notify(incident, warnings, text, announce=True)
            await self._sync(before, incident, warnings)
        return Outcome(incident, recorded is not None, warnings)

    async def post_update(
        self,
        incident: Incident,
        text: str,
        actor: str,
        *,
        status: Status | None = None,
        next_minutes: int | None = None,
    ) -> Outcome:
        text = text.strip()
        if not text:
            raise UsageError(f"Say what changed: `{self.config.command} update <text> [next <minutes>]`")
        if status is Status.RESOLVED:
            raise UsageError(f"To resolve, use `{self.config.command} resolve [summary]`.")
        now = self.clock()

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]]:
            if not i.is_open:
                raise InvalidTransition(
                    f"{i.ref} is resolved. `{self.config.command} reopen` it first if it's back, or add a note."
                )
            due = now + (timedelta(minutes=next_minutes) if next_minutes else self._cadence(i.severity))
            new_status = status or i.status
            data = {"next_update_due": due.isoformat(), "status": new_status.value}
            event = self._event(EventKind.STATUS_UPDATE, actor, text[:MAX_TEXT], **data)
            return i.model_copy(update={"status": new_status, "last_update_at": now, "next_update_due": due}), [event]

        before = incident
        incident, _ = await self._change(incident.id, change, incident)
        warnings: list[str] = []
        post = Post(
            kind=PostKind.UPDATE,
            incident=incident,
            text=text[:MAX_TEXT],
            next_update_due=incident.next_update_due,
        )
        await self._soft(
            incident,
            warnings,
            "post the update in the incident channel",
            self.chat.post(_channel(incident), post),
        )
        await self._announce_followup(incident, post, warnings)
        await self._sync(before, incident, warnings)
        return Outcome(incident, True, warnings)

    async def add_note(self, incident: Incident, text: str, actor: str) -> Outcome:
        text = text.strip()
        if not text:
            raise UsageError(f"Nothing to note: `{self.config.command} note <text>`")
        await self.store.append(incident.id, self._event(EventKind.NOTE, actor, text[:MAX_TEXT]))
        return Outcome(incident)

    async def resolve(self, incident: Incident, summary: str, actor: str) -> Outcome:
        now = self.clock()
        summary = summary.strip()[:MAX_TEXT]

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]]:
            if not i.is_open:
                raise InvalidTransition(f"{i.ref} was already resolved at {i.resolved_at:%Y-%m-%d %H:%M} UTC.")
            text = "Resolved" + (f": {summary}" if summary else "")
            update = {
                "status": Status.RESOLVED,
                "resolved_at": now,
                "resolution": summary or None,
                "next_update_due": None,
            }
            return i.model_copy(update=update), [self._event(EventKind.RESOLVED, actor, text)]

        before = incident
        incident, _ = await self._change(incident.id, change, incident)
        warnings: list[str] = []
        text = f"{_short(incident)} resolved by <@{actor}>" + (f": {summary}" if summary else "")
        post = Post(kind=PostKind.RESOLVED, incident=incident, text=text)
        await self._soft(incident, warnings, "post the resolution", self.chat.post(_channel(incident), post))
        await self._announce_followup(incident, post, warnings)
        await self._sync(before, incident, warnings)
        return Outcome(incident, True, warnings)

    async def reopen(self, incident: Incident, actor: str) -> Outcome:
        now = self.clock()

        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]]:
            if i.is_open:
                raise InvalidTransition(f"{i.ref} is still open ({i.status.value}); nothing to reopen.")
            update = {
                "status": Status.INVESTIGATING,
                "resolved_at": None,
                "resolution": None,
                "next_update_due": now + self._cadence(i.severity),
            }
            return i.model_copy(update=update), [self._event(EventKind.REOPENED, actor, "Reopened")]

        before = incident
        incident, _ = await self._change(incident.id, change, incident)
        warnings: list[str] = []
        post = Post(kind=PostKind.NOTICE, incident=incident, text=f"{_short(incident)} reopened by <@{actor}>")
        await self._soft(incident, warnings, "post the reopen notice", self.chat.post(_channel(incident), post))
        await self._announce_followup(incident, post, warnings)
        await self._sync(before, incident, warnings)
        return Outcome(incident, True, warnings)

    # ---- timeline from the channel ---------------------------------------------------------------

    async def record_pin(self, channel_id: str, ts: str, actor: str | None, message: ChatMessage | None = None) -> bool:
        """A pinned (or :pushpin:-reacted) message joins the timeline once, at the time it was originally posted."""
        incident = await self.store.by_channel(channel_id)
        if incident is None:
            return False
        if message is None:
            message = await self.chat.fetch_message(channel_id, ts)
        if message is None:
            return False
        at = datetime.fromtimestamp(float(message.ts), UTC)
        data = {"message_ts": message.ts} | ({"author": message.user} if message.user else {})
        event = TimelineEvent(at=at, kind=EventKind.PINNED, actor=actor, text=message.text[:MAX_TEXT], data=data)
        return await self.store.append_once(incident.id, f"pin:{message.ts}", event)

    # ---- reminders -------------------------------------------------------------------------------

    async def remind_due(self, limit: int = 50) -> int:
        """Nudge the IC of every open incident whose status update is overdue; returns how many were reminded."""
        now = self.clock()
        reminded = 0
        for incident_id in await self.store.due_for_reminder(now, REMINDER_LEASE_SECONDS, limit):
            try:
                reminded += await self._remind(incident_id, now)
            except FirebreakError as exc:
                log.warning("reminder for INC-%s failed: %s", incident_id, exc)
        return reminded

    async def _remind(self, incident_id: int, now: datetime) -> int:
        def change(i: Incident) -> tuple[Incident, list[TimelineEvent]] | None:
            if not i.is_open or i.next_update_due is None or i.next_update_due > now or i.channel_id is None:
                return None
            due = now + self._cadence(i.severity)
            return i.model_copy(update={"next_update_due": due}), [
                self._event(EventKind.REMINDER, None, "Status update overdue; IC reminded", ic=i.ic or "")
            ]

        incident, recorded = await self._change(incident_id, change)
        if recorded is None:
            return 0
        last = incident.last_update_at
        since = f"the last one was {_ago(now - last)} ago" if last else "none has been posted yet"
        who = f"<@{incident.ic}>" if incident.ic else "Nobody is IC! Whoever can:"
        text = (
            f"{who} a status update for {incident.ref} is due ({since}). "
            f"Post one with `{self.config.command} update <what changed> [next <minutes>]`."
        )
        await self.chat.post(_channel(incident), Post(kind=PostKind.REMINDER, incident=incident, text=text))
        return 1

    # ---- internals -------------------------------------------------------------------------------

    def _cadence(self, level: int) -> timedelta:
        return timedelta(minutes=self.config.severity(level).update_every_minutes)

    def _event(self, kind: EventKind, actor: str | None, text: str, **data: str) -> TimelineEvent:
        return TimelineEvent(at=self.clock(), kind=kind, actor=actor, text=text, data=data)

    async def _change(
        self, incident_id: int, change: Change, hint: Incident | None = None
    ) -> tuple[Incident, list[TimelineEvent] | None]:
        """Apply `change` and save with optimistic locking; a lost race re-reads and re-applies after a jittered pause.

        Returns the saved record and the timeline events saved with it, or the current record and None when
        `change` found nothing to do. The events are those of the attempt that won, so callers can report them.

        `hint` is a copy the caller already holds: tried first to save a read. Only a fresh read may conclude
        "nothing to change" or refuse the change, since the hint may be stale.
        """
        current, fresh = hint, False
        for attempt in range(CHANGE_ATTEMPTS):
            if current is None:
                current, fresh = await self.get(incident_id), True
            try:
                result = change(current)
            except FirebreakError:
                if fresh:
                    raise
                current = None
                continue
            if result is None:
                if fresh:
                    return current, None
                current = None
                continue
            updated, events = result
            try:
                return await self.store.save(updated, events), events
            except Conflict:
                current = None
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311 - jitter, not crypto
        raise FirebreakError(f"INC-{incident_id} is being changed by many people at once; try again in a moment.")

    async def _soft(self, incident: Incident, warnings: list[str], what: str, call: object) -> None:
        """Run a chat call whose failure should not undo the state change: record and report it instead."""
        try:
            await call  # type: ignore[misc]
        except ChatError as exc:
            await self._warn(incident, warnings, f"Couldn't {what}: {exc}")

    async def _warn(self, incident: Incident, warnings: list[str], text: str) -> None:
        warnings.append(text)
        log.warning("%s: %s", incident.ref, text)
        try:
            await self.store.append(incident.id, self._event(EventKind.WARNING, None, text))
        except Exception:
            log.exception("%s: could not record warning", incident.ref)

    async def _notify(self, incident: Incident, warnings: list[str], text: str, *, announce: bool = False) -> None:
        post = Post(kind=PostKind.NOTICE, incident=incident, text=text)
        await self._soft(incident, warnings, "post in the incident channel", self.chat.post(_channel(incident), post))
        if announce:
            await self._announce_followup(incident, post, warnings)

    async def _announce_followup(self, incident: Incident, post: Post, warnings: list[str]) -> None:
        """Stakeholders follow the announcement thread: reply there (`_sync` keeps the announcement itself current)."""
        if not (incident.announce_channel and incident.announce_ts):
            return
        threaded = post.model_copy(update={"thread_ts": incident.announce_ts})
        await self._soft(
            incident,
            warnings,
            "reply under the announcement",
            self.chat.post(incident.announce_channel, threaded),
        )

    async def _sync(self, before: Incident, after: Incident, warnings: list[str]) -> None:
        """Keep what shows the record's state in step with it: channel topic, summary message, announcement.

        Concurrent commands finish in any order, so this renders from the latest record under a lock:
        whichever sync runs last shows the newest state.
        """
        if _topic(before) == _topic(after) and not after.summary_ts and not after.announce_ts:
            return
        async with self.store.lock(f"sync:{after.id}", timeout_seconds=30):
            latest = await self.get(after.id)
            channel = _channel(latest)
            if _topic(before) != _topic(after):
                await self._soft(
                    latest, warnings, "update the channel topic", self.chat.set_topic(channel, _topic(latest))
                )
            if latest.summary_ts:
                summary = Post(kind=PostKind.SUMMARY, incident=latest, text=_summary_text(latest))
                await self._soft(
                    latest,
                    warnings,
                    "refresh the summary message",
                    self.chat.edit(channel, latest.summary_ts, summary),
                )
            if latest.announce_channel and latest.announce_ts:
                root = Post(kind=PostKind.ANNOUNCEMENT, incident=latest, text=_announce_text(latest))
                await self._soft(
                    latest,
                    warnings,
                    "refresh the announcement",
                    self.chat.edit(latest.announce_channel, latest.announce_ts, root),
                )


def _channel(incident: Incident) -> str:
    if incident.channel_id is None:
        raise InvalidTransition(f"{incident.ref} has no channel yet; repeat the declare to finish setting it up.")
    return incident.channel_id


def _short(incident: Incident) -> str:
    return f"*{incident.ref}* ({incident.sev_label}) {incident.title}"


def _topic(incident: Incident) -> str:
    ic = f"<@{incident.ic}>" if incident.ic else "unassigned"
    topic = f"{incident.sev_label} | {incident.status.value} | IC {ic} | {incident.ref} {incident.title}"
    return topic[:TOPIC_LIMIT]


def _summary_text(incident: Incident) -> str:
    return f"{_short(incident)}: {incident.status.value}, IC <@{incident.ic}>" if incident.ic else _short(incident)


def _announce_text(incident: Incident) -> str:
    where = f" in <#{incident.channel_id}>" if incident.channel_id else ""
    state = "resolved" if not incident.is_open else "declared"
    return f"{_short(incident)} {state}{where}"


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
