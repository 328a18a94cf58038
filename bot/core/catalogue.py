"""The stabilizer catalogue: known incident scenarios with their first stabilizer, the evidence that splits the
layers, the matching playbooks and prevention, so `/incident guide` can suggest one from an incident's alerts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.errors import ConfigError
from bot.core.evidence_config import EvidenceConfig
from bot.models import Incident
from bot.models.evidence import Layer

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "catalogue.yaml"
"""The catalogue firebreak ships; `guide.catalogue` in FIREBREAK_CONFIG adds to it or replaces entries by id.
An installed package (the image) finds it as deploy/catalogue.yaml under the working directory instead."""


class MatchHints(BaseModel):
    """How an incident is recognised: its alert's name, or a regular expression over a label or the title."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alerts: tuple[str, ...] = ()
    """Alert names (exact, as Alertmanager sends `alertname`)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """A label name to a regular expression its value must match (searched, case-insensitive)."""
    title: str | None = None
    """A regular expression searched in the incident's title (case-insensitive)."""

    @field_validator("labels")
    @classmethod
    def _label_regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for name, pattern in v.items():
            _compiles(pattern, f"labels.{name}")
        return v

    @field_validator("title")
    @classmethod
    def _title_regex(cls, v: str | None) -> str | None:
        if v is not None:
            _compiles(v, "title")
        return v


def _compiles(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}: {pattern!r} is not a regular expression ({exc})") from None


class Scenario(BaseModel):
    """One known way things break, and what to do first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    title: str = Field(min_length=1, max_length=100)
    symptoms: str = Field(min_length=1)
    layers: tuple[Layer, ...] = Field(min_length=1)
    first_stabilizer: str = Field(min_length=1)
    """What to do first, before understanding why: the move that stops the bleeding and is easy to undo."""
    evidence: tuple[str, ...] = ()
    """Names of evidence signals or layer checks (`evidence.signals` / `evidence.checks`) that split the layers."""
    playbooks: tuple[str, ...] = ()
    """Mitigation playbooks that apply (`/incident mitigate <playbook>`)."""
    match: MatchHints = MatchHints()
    prevention: str = Field(min_length=1)


class GuideConfig(BaseModel):
    """`guide:` in FIREBREAK_CONFIG: scenarios added to the shipped catalogue (an entry with a shipped id
    replaces it), or `shipped: false` to use only these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shipped: bool = True
    catalogue: tuple[Scenario, ...] = ()


def load_catalogue(path: Path) -> tuple[Scenario, ...]:
    """Read a catalogue file (a YAML list of scenarios), every problem as one readable ConfigError."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"catalogue {path}: {exc}") from None
    if not isinstance(raw, list):
        raise ConfigError(f"catalogue {path} must hold a list of scenarios")
    try:
        return tuple(Scenario.model_validate(item) for item in raw)
    except ValidationError as exc:
        raise ConfigError(f"catalogue {path}: {exc}") from None


def merged(shipped: Iterable[Scenario], extra: Iterable[Scenario]) -> tuple[Scenario, ...]:
    """The shipped scenarios with configured ones added; a configured id replaces the shipped entry."""
    by_id = {s.id: s for s in shipped}
    by_id.update({s.id: s for s in extra})
    return tuple(by_id.values())


def unresolved(scenarios: Iterable[Scenario], evidence: EvidenceConfig, playbooks: Iterable[str]) -> list[str]:
    """References that name no evidence signal, layer check or playbook, as "<id>: <what>"."""
    names = {s.name for s in evidence.signals} | {c.name for c in evidence.checks}
    known = set(playbooks)
    problems = [f"{s.id}: evidence {e!r}" for s in scenarios for e in s.evidence if e not in names]
    return problems + [f"{s.id}: playbook {p!r}" for s in scenarios for p in s.playbooks if p not in known]


def matches(scenario: Scenario, incident: Incident) -> bool:
    """Whether the incident's alert name, labels (scope and origin) or title fit the scenario's hints."""
    hints = scenario.match
    origin = incident.origin
    if origin is not None and origin.name in hints.alerts:
        return True
    labels = {**(origin.labels if origin else {}), **incident.scope}
    for name, pattern in hints.labels.items():
        if name in labels and re.search(pattern, labels[name], re.IGNORECASE):
            return True
    return hints.title is not None and re.search(hints.title, incident.title, re.IGNORECASE) is not None


def suggest(scenarios: Iterable[Scenario], incident: Incident) -> list[Scenario]:
    return [s for s in scenarios if matches(s, incident)]


_shipped: dict[Path, tuple[Scenario, ...]] = {}


def catalogue(config: GuideConfig, path: Path = SHIPPED) -> tuple[Scenario, ...]:
    """The scenarios in force: the shipped file (read once) unless turned off, then the configured entries."""
    if not config.shipped:
        return config.catalogue
    if path not in _shipped:
        found = path if path.exists() else Path("deploy") / "catalogue.yaml"
        _shipped[path] = load_catalogue(found) if found.exists() else ()
    return merged(_shipped[path], config.catalogue)
