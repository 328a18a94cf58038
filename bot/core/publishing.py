"""Showing the record in chat: event posts, the announcement thread, topic/summary/announcement refresh, warnings."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence

from bot.core.changes import get_incident
from bot.core.deps import Verbs
from bot.core.errors import ChatError, InvalidTransition
from bot.core.jobs import Op
from bot.models import EventKind, Incident, Post, PostKind, TimelineEvent, Warned

log = logging.getLogger(__name__)

SYNC_ROUNDS = 5
WHAT_FAILED = {
    EventKind.STATUS_UPDATE: "post the update in the incident channel",
    EventKind.RESOLVED: "post the resolution",
    EventKind.REOPENED: "post the reopen notice",
}


def channel_of(incident: Incident) -> str:
    if incident.channel_id is None:
        raise InvalidTransition(f"{incident.ref} has no channel yet; repeat the declare to finish setting it up.")
    return incident.channel_id


def topic_facts(incident: Incident) -> tuple[object, ...]:
    """What the channel topic shows; the topic is rewritten only when one of these changed."""
    return (
        incident.severity,
        incident.status,
        incident.ic,
        incident.id,
        incident.title,
        tuple(incident.flags),
        incident.next_update_due,
    )


class Publisher(Verbs):
    async def publish(
        self,
        before: Incident,
        after: Incident,
        events: Sequence[TimelineEvent] = (),
        *,
        op: Op,
        thread: bool = False,
        warnings: list[str] | None = None,
    ) -> list[str]:
        """Tell the incident channel about `events` (and the announcement thread when `thread`), then bring
        the topic, summary and announcement in line with the record. Returns what went wrong, for the user.

        Posts carry keys derived from `op`, so an op resumed after a crash finds what it already posted.
        """
        warnings = [] if warnings is None else warnings
        for n, event in enumerate(events):
            post = Post(kind=PostKind.EVENT, incident=after, event=event)
            what = WHAT_FAILED.get(event.kind, "post in the incident channel")
            op.check()
            sent = self.chat.post(channel_of(after), post, key=op.part(f"event{n}"), recover=op.recovering)
            await self.soft(after, warnings, what, sent)
            if thread and after.announce_channel and after.announce_ts:
                threaded = post.model_copy(update={"thread_ts": after.announce_ts})
                op.check()
                sent = self.chat.post(
                    after.announce_channel, threaded, key=op.part(f"thread{n}"), recover=op.recovering
                )
                await self.soft(after, warnings, "reply under the announcement", sent)
        # A resumed op read the record after its own change: it can't tell what changed, so it shows it all.
        await self._sync(before, after, warnings, recovering=op.recovering)
        return warnings

    async def soft(self, incident: Incident, warnings: list[str], what: str, call: Awaitable[object]) -> None:
        """Run a chat call whose refusal should not undo the state change: record and report it instead.

        A transient failure (Slack unreachable or failing) is not a refusal: it propagates, so the job runs
        again and, its writes and posts being keyed, finishes what is missing once Slack answers.
        """
        try:
            await call
        except ChatError as exc:
            if exc.transient:
                raise
            await self.warn(incident, warnings, f"Couldn't {what}: {exc}")

    async def answer_reminder(self, incident: Incident, ts: str, answer: TimelineEvent) -> None:
        """A reminder was answered (or missed): show what answered it, with no live buttons left. Slack failing
        makes the job run again; Slack refusing (the message was deleted) is logged. A button on a reminder
        whose edit never landed checks that it is the live reminder before acting."""
        if incident.channel_id is None:
            return
        post = Post(kind=PostKind.REMINDER, incident=incident, answer=answer)
        try:
            await self.chat.edit(incident.channel_id, ts, post)
        except ChatError as exc:
            if exc.transient:
                raise  # the job runs again (its writes and posts are keyed) and edits it then
            log.warning("%s: could not mark reminder %s answered: %s", incident.ref, ts, exc)

    async def warn(self, incident: Incident, warnings: list[str], text: str) -> None:
        warnings.append(text)
        log.warning("%s: %s", incident.ref, text)
        try:
            event = TimelineEvent(at=self.clock(), payload=Warned(text=text))
            await self.store.append(incident.id, event, Op.fresh().key)
        except Exception:
            log.exception("%s: could not record warning", incident.ref)

    async def _sync(self, before: Incident, after: Incident, warnings: list[str], *, recovering: bool = False) -> None:
        """Keep what shows the record's state in step with it: channel topic, summary message, announcement.

        Concurrent commands finish in any order, and no lock is held across Slack calls (a crashed holder
        would leave others waiting). Instead each sync renders the latest record and, once its edits are
        done, checks the record again: if it changed meanwhile, it renders again. The last edit to land is
        therefore always of the newest record.
        """
        topic_changed = topic_facts(before) != topic_facts(after) or recovering
        if not topic_changed and not after.summary_ts and not after.announce_ts:
            return
        latest = await get_incident(self.store, after.id)
        for _ in range(SYNC_ROUNDS):
            await self._show(latest, warnings, topic=topic_changed)
            current = await get_incident(self.store, after.id)
            if current.version == latest.version:
                return
            topic_changed = topic_changed or topic_facts(current) != topic_facts(latest)
            latest = current

    async def _show(self, latest: Incident, warnings: list[str], *, topic: bool) -> None:
        channel = channel_of(latest)
        if topic:
            await self.soft(latest, warnings, "update the channel topic", self.chat.set_topic(channel, latest))
        if latest.summary_ts:
            summary = Post(kind=PostKind.SUMMARY, incident=latest)
            await self.soft(
                latest, warnings, "refresh the summary message", self.chat.edit(channel, latest.summary_ts, summary)
            )
        if latest.announce_channel and latest.announce_ts:
            await self.soft(latest, warnings, "refresh the announcement", self._edit_announcement(latest))

    async def _edit_announcement(self, latest: Incident) -> None:
        assert latest.announce_channel and latest.announce_ts
        # Records from before names were resolved at start may hold `#name`; chat.update takes ids only.
        channel = await self.chat.resolve_channel(latest.announce_channel)
        await self.chat.edit(channel, latest.announce_ts, Post(kind=PostKind.ANNOUNCEMENT, incident=latest))
