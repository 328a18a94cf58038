"""The incident service handlers talk to: lookups, plus the verb families (declaring, changing, pins, reminding,
mitigation)."""

from __future__ import annotations

from bot.core.changes import Outcome, get_incident
from bot.core.changing import Changing
from bot.core.config import IncidentConfig
from bot.core.declaring import Declaring
from bot.core.deps import Deps
from bot.core.errors import NotFound, UsageError
from bot.core.evidence import EvidenceGathering
from bot.core.metrics import Metrics
from bot.core.pins import Pins
from bot.core.playbook import PlaybookRegistry
from bot.core.ports import (
    AlertStore,
    ChartRenderer,
    Chat,
    Clock,
    Clusters,
    IncidentStore,
    JobQueue,
    MetricsSource,
    MitigationStore,
)
from bot.core.publishing import Publisher
from bot.core.recovery import Verifying
from bot.core.refs import IncidentRef
from bot.core.reminding import Reminding
from bot.core.running import Running
from bot.core.schedule import Schedule
from bot.core.triaging import Triaging
from bot.models import Incident, TimelineEvent

__all__ = ["IncidentService", "Outcome"]


class IncidentService:
    """Each verb family lives in its own module; this wires them to one store, chat and clock."""

    def __init__(
        self,
        store: IncidentStore,
        chat: Chat,
        config: IncidentConfig,
        *,
        announce_channel: str | None,
        clock: Clock,
        metrics: Metrics | None = None,
        playbooks: PlaybookRegistry | None = None,
        cluster: tuple[Clusters, MitigationStore, JobQueue] | None = None,
        alerts: tuple[AlertStore, JobQueue] | None = None,
        triage_channel: str | None = None,
        metrics_source: MetricsSource | None = None,
        chart_renderer: ChartRenderer | None = None,
    ) -> None:
        deps = Deps(store, chat, config, clock, metrics)
        self.store = store
        self.config = config
        self.playbooks = playbooks or PlaybookRegistry()
        self.publisher = Publisher(deps)
        self.declaring = Declaring(deps, self.publisher, announce_channel=announce_channel)
        self.changing = Changing(deps, self.publisher)
        self.pins = Pins(deps)
        self.schedule = Schedule(config)
        self.reminding = Reminding(deps, self.publisher, self.schedule)
        self.alerting = Triaging(deps, self.declaring, *alerts, triage_channel=triage_channel) if alerts else None
        self.evidence = EvidenceGathering(config.evidence, metrics_source, store, chat, clock, chart_renderer)
        self.recovery = Verifying(config.evidence, metrics_source, store, clock, metrics)
        self._mitigation = Running(deps, self.publisher, self.playbooks, *cluster) if cluster else None
        # The verbs, by family.
        self.declare = self.declaring.declare
        self.assign_role = self.changing.assign_role
        self.set_severity = self.changing.set_severity
        self.post_update = self.changing.post_update
        self.add_note = self.changing.add_note
        self.resolve = self.changing.resolve
        self.reopen = self.changing.reopen
        self.record_pin = self.pins.record_pin
        self.record_unpin = self.pins.record_unpin
        self.snooze = self.reminding.snooze

    @property
    def mitigation(self) -> Running:
        """Playbooks, approvals and runs; only where a cluster and its stores were wired in (not before the ack)."""
        if self._mitigation is None:
            raise UsageError("Mitigation playbooks are not set up in this firebreak.")
        return self._mitigation

    async def get(self, incident_id: int) -> Incident:
        return await get_incident(self.store, incident_id, self.config.command)

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
            shown = f"#{ref.channel_name}" if ref.channel_name else "That channel"
            raise NotFound(f"{shown} is not an incident channel firebreak knows. `{cmd} list` shows open incidents.")
        return found

    async def list_open(self) -> list[Incident]:
        return sorted(await self.store.list_open(), key=lambda i: (i.severity, i.declared_at))

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        return await self.store.timeline(incident_id)
