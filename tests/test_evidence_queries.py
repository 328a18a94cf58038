"""Every default golden signal and layer check is PromQL a real Prometheus accepts, with every scope label the
templates use filled in (service, namespace, model): a typo in a default would otherwise only show in a cluster
that has the metric."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.prometheus import PrometheusSource
from bot.core.evidence import EvidenceGathering
from bot.core.evidence_config import EvidenceConfig, placeholders
from bot.models import Incident
from tests.prom_proc import Exporter, Prometheus


async def test_every_default_query_is_accepted_by_prometheus(prom_exporter: Exporter, prometheus: Prometheus) -> None:
    config = EvidenceConfig()
    labels = {
        name for q in [s.query for s in config.signals] + [c.query for c in config.checks] for name in placeholders(q)
    }
    assert labels == {"service", "namespace", "model"}
    await prom_exporter.scraped(within=15)
    source = PrometheusSource(prometheus.url, timeout_seconds=5)
    now = datetime.now(UTC)
    incident = Incident(
        id=1,
        title="t",
        severity=2,
        declared_at=now,
        declared_by="U1",
        scope={"service": "checkout", "namespace": "serving", "model": 'llama-3.1-70b"x'},
    )
    try:
        gathering = EvidenceGathering(config, source, None, None, lambda: now)  # type: ignore[arg-type]
        evidence = await gathering.gather(incident)
    finally:
        source.close()
    assert not evidence.skipped
    assert len(evidence.signals) == len(config.signals) and len(evidence.layers) == len(config.checks)
    assert evidence.failed == [], evidence.failed
