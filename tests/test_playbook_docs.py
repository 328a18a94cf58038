"""The playbook documentation stays true: the commented `mitigation:` example in deploy/firebreak.example.yaml and the
README's YAML examples load as firebreak loads FIREBREAK_CONFIG, and the README's table names every playbook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.alert_rules import AlertConfig
from bot.core.config import (
    ApprovalRule,
    DrainLimits,
    IncidentConfig,
    NodeLimits,
    ReminderConfig,
    ScaleLimits,
    load_config,
)
from playbooks import discover
from tests.conftest import repo_root

README = (repo_root() / "README.md").read_text()
PLAYBOOKS = README[README.index("## Playbooks") : README.index("\n## ", README.index("## Playbooks") + 1)]


def load(text: str, tmp_path: Path) -> IncidentConfig:
    path = tmp_path / "firebreak.yaml"
    path.write_text(text)
    return load_config(path)


def commented_block(first: str) -> str:
    """A commented-out section of the example config, from its first line to the next blank line, uncommented."""
    lines = (repo_root() / "deploy" / "firebreak.example.yaml").read_text().splitlines()
    start = lines.index(first)
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return "\n".join(line.removeprefix("# ") for line in lines[start:end] if line.startswith("# "))


def test_the_commented_reminders_example_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    assert load(commented_block("# reminders:"), tmp_path).reminders == ReminderConfig()


def test_the_commented_alerts_example_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    assert load(commented_block("# alerts:"), tmp_path).alerts == AlertConfig()


def test_the_readme_alerts_examples_load(tmp_path: Path) -> None:
    section = README[README.index("## Alerts") : README.index("## Playbooks")]
    receiver, rules = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert "send_resolved: true" in receiver and "type: Bearer" in receiver
    config = load(rules, tmp_path).alerts
    assert [r.action.value for r in config.routes] == ["ignore", "declare", "triage"] and config.inhibit


def test_the_readme_reminders_example_loads(tmp_path: Path) -> None:
    section = README[README.index("## Reminders") : README.index("## Alerts")]
    (example,) = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    config = load(example, tmp_path)
    assert config.reminders.escalation == "S0ONCALL" and config.reminders.required_roles == ("comms",)


def test_the_commented_mitigation_example_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    config = load(commented_block("# mitigation:"), tmp_path).mitigation
    assert (config.nodes, config.drain, config.scale, config.approval) == (
        NodeLimits(),
        DrainLimits(),
        ScaleLimits(),
        ApprovalRule(),
    ), "the example says it shows the defaults"
    assert config.argocd_namespace == IncidentConfig().mitigation.argocd_namespace
    drain = config.rule("drain")
    assert (drain.requesters, drain.approvers, drain.approvals) == (("S0SRE",), ("S0ONCALL", "U0LEAD"), 2)
    assert config.rule("cordon") == ApprovalRule()
    assert config.impersonate == {"U0ALICE": "alice@example.com"}


@pytest.mark.parametrize("index", range(len(re.findall(r"```yaml\n", PLAYBOOKS))))
def test_each_yaml_example_in_the_readme_loads(tmp_path: Path, index: int) -> None:
    example = re.findall(r"```yaml\n(.*?)```", PLAYBOOKS, re.DOTALL)[index]
    config = load(example, tmp_path)
    assert config.mitigation != IncidentConfig().mitigation, "an example that sets nothing shows nothing"


def test_the_readme_table_names_every_playbook_with_its_parameters() -> None:
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `([a-z-]+)` \| (.*?) \|", PLAYBOOKS, re.MULTILINE)}
    registry = discover(IncidentConfig())
    assert set(rows) == {p.name for p in registry}
    for playbook in registry:
        # cluster: every one; objects and missing_ok: set by an undo, not typed by people
        fields = set(playbook.params.model_fields) - {"cluster", "objects", "missing_ok"}
        same = re.fullmatch(r"as `([a-z-]+)`", rows[playbook.name])  # "as `pause-sync`": that row's parameters
        shown = rows[same[1]] if same else rows[playbook.name]
        assert all(f"`{field}=" in shown or f"[{field}=" in shown for field in fields), (playbook.name, fields)
