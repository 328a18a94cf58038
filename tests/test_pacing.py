"""At most about one message a second per channel, across replicas: a burst of declarations is spread out in the
shared announcement channel, not sent at once (Slack would answer 429)."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack

from tests.conftest import make_settings
from tests.harness import running
from tests.slack_standin import SlackStandIn


async def test_two_replicas_share_each_channels_posting_slots(slack: SlackStandIn, redis_url: str) -> None:
    settings = make_settings(slack, redis_url, post_spacing_seconds=0.5)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running(settings, slack))
        b = await stack.enter_async_context(running(settings, slack))
        await asyncio.gather(*(r.command(f"declare sev2 Burst {n}", user=f"U{n}") for n, r in enumerate([a, b, a, b])))
        await asyncio.gather(a.settle(), b.settle())
    announce = slack.by_name("incidents")
    times = sorted(float(m["ts"]) for m in announce.messages if "thread_ts" not in m)
    assert len(times) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.45, gaps
    # Each incident's own channel is paced on its own: their summaries did not wait for each other.
    summaries = sorted(
        float(c.messages[0]["ts"]) for c in slack.channels.values() if c.name.startswith("inc-") and c.messages
    )
    assert len(summaries) == 4 and summaries[-1] - summaries[0] < 1.0
