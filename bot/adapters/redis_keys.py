"""Every Redis key firebreak writes, in one place. Ids are deterministic so repeats land on the same key."""

from __future__ import annotations

from bot.core.ports import ClaimKind, LockKind


class Keys:
    def __init__(self, prefix: str = "fb") -> None:
        self.prefix = prefix

    def incident(self, incident_id: int | str) -> str:
        return f"{self.prefix}:incident:{incident_id}"

    def timeline(self, incident_id: int | str) -> str:
        return f"{self.prefix}:incident:{incident_id}:timeline"

    def timeline_seen(self, incident_id: int | str) -> str:
        """Dedupe marks of timeline entries that must appear once (a pinned message)."""
        return f"{self.prefix}:incident:{incident_id}:seen"

    def channel(self, channel_id: str) -> str:
        return f"{self.prefix}:channel:{channel_id}"

    def channel_name(self, name: str) -> str:
        return f"{self.prefix}:channel-name:{name}"

    def claim(self, kind: ClaimKind, ident: str) -> str:
        """An idempotency claim: the first delivery of a Slack retry or double submit."""
        return f"{self.prefix}:once:{kind.value}:{ident}"

    def declare_binding(self, actor: str, fingerprint: str) -> str:
        """Who declared which title: a repeat within the window resumes that incident instead of opening another."""
        return f"{self.prefix}:bind:declare:{actor}:{fingerprint}"

    def lock(self, kind: LockKind, incident_id: int) -> str:
        return f"{self.prefix}:lock:{kind.value}:{incident_id}"

    @property
    def sequence(self) -> str:
        return f"{self.prefix}:seq:incident"

    @property
    def open_set(self) -> str:
        return f"{self.prefix}:open"

    @property
    def due(self) -> str:
        return f"{self.prefix}:due"
