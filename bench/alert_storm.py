"""An Alertmanager storm through firebreak: 5,000 alerts in 20 groups within 60 s, as Alertmanager delivers them.

firebreak runs in this process (tests/harness.py's `running`: the real app on a real port, FIREBREAK_ALERTS_TOKEN
set) against a real redis-server and the Slack stand-in, which notes when each Web API call arrives. The webhooks
come from bench/_alert_sender.py in a process of its own (bench/_storm_plan.py says what it sends: per group, the
whole group's state every group_interval, so mostly resends, retries of the same body, and resolves for 30% of the
alerts), so encoding and sending ~27 MB of JSON does not run in the bot's event loop or count in its latency.
Targets, each printed PASS/FAIL (exit 1 on a miss): one incident per group (20); at most 2 chat.postMessage +
chat.update calls per channel in any 1 s window; every occurrence posted in its incident's timeline, once;
webhook p99 (POST to 200) <= 1 s; everything posted within 60 s. `--group-interval 0.25` (with fewer groups)
flushes each group four times a second, faster than the storm message may be edited, to load the coalescing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench._alert_sender import Post
from bench._bot import Lateness
from bench._storm_plan import Storm, plan, scope
from bench.ack_latency import pct, spawn
from bot.models import Alerted, Incident
from bot.root.runtime import settle_heap
from tests.conftest import make_settings, redis_command
from tests.harness import BOT_TOKEN, eventually, running
from tests.slack_standin import Call, SlackStandIn

TOKEN = "bench-alertmanager-token"
WINDOW_S = 1.0
MAX_PER_WINDOW = 2
"""Slack allows about one message per second per channel, short bursts tolerated. The bot coalesces by second:
the storm message's refresh is one job per incident per wall-clock second, due a second later, so two refreshes
can fall either side of a second's boundary, a few ms apart, while the rate stays one a second. A sliding window
counts those as 2; 3 or more in any second would be the bot sending faster than once a second."""
P99_TARGET_MS = 1000.0
"""The ack is a parse and one durable enqueue; under a second keeps each notification well inside its group's
group_interval (Alertmanager's intervals are minutes)."""
POST_WITHIN_S = 60.0
SETTLE_S = 60.0
MESSAGES = ("chat.postMessage", "chat.update")


class TimedCalls(list[Call]):
    """The stand-in's call record (it only appends), each call with the time.monotonic() it arrived at."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, call: Call) -> None:
        self.at.append(time.monotonic())
        super().append(call)


class TimedSlack(SlackStandIn):
    """The Slack stand-in of tests/slack_standin.py, noting when each Web API call arrived."""

    def __init__(self) -> None:
        super().__init__(bot_token=BOT_TOKEN)
        self.timed = TimedCalls()
        self.calls = self.timed

    def messages(self) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
        """Times and methods of chat.postMessage and chat.update by channel id (a #name resolved to its id)."""
        names = {c.name: c.id for c in self.channels.values()}
        times: dict[str, list[float]] = defaultdict(list)
        methods: dict[str, list[str]] = defaultdict(list)
        for call, at in zip(self.timed, self.timed.at, strict=True):
            if call.method in MESSAGES:
                ref = str(call.args.get("channel", ""))
                channel = ref if ref in self.channels else names.get(ref.lstrip("#"), ref)
                times[channel].append(at)
                methods[channel].append(call.method)
        return dict(times), dict(methods)


def busiest(times: list[float]) -> int:
    """Most calls in any window of WINDOW_S (sliding: each call opens one)."""
    ordered, worst, j = sorted(times), 0, 0
    for i, t in enumerate(ordered):
        while ordered[j] <= t - WINDOW_S:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


@dataclass
class Run:
    storm: Storm
    t0: float = 0.0
    posts: list[Post] = field(default_factory=list)
    """[group, sent (monotonic), seconds to the answer, status, alerts, retry] per POST."""
    acked: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    found: dict[int, Counter[tuple[str, str]]] = field(default_factory=dict)
    """Alerted (fingerprint, status) in each incident's timeline."""
    channels: dict[str, list[float]] = field(default_factory=dict)
    """When each chat.postMessage and chat.update reached Slack, by channel id."""
    methods: dict[str, list[str]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    announce: str = ""
    posted_by: float = 0.0
    settled_at: float = 0.0
    settled: bool = True
    lateness: list[float] = field(default_factory=list)


async def storm_the_bot(storm: Storm, tmp: Path) -> Run:
    run = Run(storm)
    sock = tmp / "redis.sock"
    redis = await spawn(*redis_command(sock))
    slack = TimedSlack()
    run.announce = slack.add_channel("incidents").id
    await slack.start()
    lateness = Lateness()
    watching = asyncio.create_task(lateness.run(), name="bench:lateness")
    sender: asyncio.subprocess.Process | None = None
    try:
        await eventually(sock.exists, within=10, what="redis-server never opened its socket")
        # The production spacing of posts per channel (the tests turn it off to run fast).
        settings = make_settings(
            slack, f"unix://{sock}", alerts_token=TOKEN, log_level="WARNING", post_spacing_seconds=1.0
        )
        async with running(settings, slack) as bot:
            settle_heap()  # as `firebreak serve` does after building the bot
            flags = ["--url", f"{bot.url}/alerts/alertmanager", "--token", TOKEN, "--storm", json.dumps(asdict(storm))]
            sender = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench._alert_sender", *flags, stdout=asyncio.subprocess.PIPE
            )
            assert sender.stdout is not None
            out = json.loads(await sender.stdout.read())
            await sender.wait()
            run.t0 = float(out["t0"])
            run.posts = [(int(g), float(a), float(b), int(c), int(n), bool(r)) for g, a, b, c, n, r in out["posts"]]
            run.acked = {int(g): {(f, s) for f, s in occ} for g, occ in out["acked"].items()}
            run.posted_by = max(sent + seconds for _, sent, seconds, *_ in run.posts)
            try:
                await bot.fb.worker.drain(timeout=SETTLE_S)
            except TimeoutError as exc:
                run.settled = False
                print(f"the bot did not settle: {exc}")
            run.settled_at = time.monotonic()
            run.lateness = [s for at, s in lateness.samples if run.t0 <= at <= run.settled_at]
            run.incidents = await bot.fb.service.list_open()
            for incident in run.incidents:
                events = await bot.fb.service.timeline(incident.id)
                alerted = [e.payload for e in events if isinstance(e.payload, Alerted)]
                run.found[incident.id] = Counter((a.fingerprint, a.status) for a in alerted)
            run.channels, run.methods = slack.messages()
            run.calls = Counter(c.method for c in slack.timed)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        if sender is not None and sender.returncode is None:
            sender.kill()
            await sender.wait()
        await slack.stop()
        redis.terminate()
        await redis.wait()
    return run


def sent_occurrences(storm: Storm) -> dict[int, set[tuple[str, str]]]:
    """Every (fingerprint, status) the plan posts, by group (the plan the sender ran; startsAt aside)."""
    return {g: {o for s in sends for o in s.occurrences} for g, sends in enumerate(plan(storm))}


Check = tuple[str, bool]


def report_posts(run: Run) -> list[Check]:
    storm, posts = run.storm, run.posts
    ms = [seconds for _, _, seconds, _, _, _ in posts]
    retries = sum(1 for p in posts if p[5])
    failed = sum(1 for p in posts if p[3] != 200)
    print(
        f"storm: {storm.alerts} alerts in {storm.groups} groups ({storm.burst}/group at once, the rest over "
        f"{storm.ramp:g} s; {storm.resolve_share} in {storm.resolve_every} resolve {storm.resolve_after:g} s later); "
        f"group_wait {storm.group_wait:g} s, group_interval {storm.group_interval:g} s, "
        f"repeat_interval {storm.repeat_interval:g} s"
    )
    print(
        f"posted by a separate process: {len(posts)} webhooks ({len(posts) - retries} flushes, {retries} retries of "
        f"the same body) carrying {sum(p[4] for p in posts)} alerts; non-200 answers {failed}; posting took "
        f"{run.posted_by - run.t0:.1f} s; the bot settled {run.settled_at - run.posted_by:.1f} s after the last POST"
    )
    p50, p99 = pct(ms, 0.5), pct(ms, 0.99)
    loop = run.lateness or [0.0]
    print(
        f"webhook latency (POST to 200), {len(ms)} POSTs: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
        f"{1000 * max(ms):.1f} ms; the bot's event loop lateness p99 {pct(loop, 0.99):.1f} ms, max "
        f"{1000 * max(loop):.1f} ms"
    )
    took = run.posted_by - run.t0
    return [
        (f"webhook p99 <= {P99_TARGET_MS:.0f} ms ({p99:.1f} ms)", p99 <= P99_TARGET_MS and not failed),
        (f"everything posted within {POST_WITHIN_S:g} s ({took:.1f} s)", took <= POST_WITHIN_S),
    ]


def by_group(run: Run) -> dict[int, list[Incident]]:
    """Incidents by the group whose scope they carry; -1 for any other scope."""
    groups: dict[int, list[Incident]] = defaultdict(list)
    scopes = {json.dumps(scope(g), sort_keys=True): g for g in range(run.storm.groups)}
    for incident in run.incidents:
        groups[scopes.get(json.dumps(incident.scope, sort_keys=True), -1)].append(incident)
    return groups


def report_incidents(run: Run, groups: dict[int, list[Incident]]) -> list[Check]:
    n = run.storm.groups
    single = sum(1 for g in range(n) if len(groups.get(g, [])) == 1)
    print(
        f"incidents opened: {len(run.incidents)}; groups with exactly one: {single}/{n}; "
        f"of another scope: {len(groups.get(-1, []))}"
    )
    return [(f"incidents opened == {n}, one per group ({len(run.incidents)})", single == n == len(run.incidents))]


def report_slack(run: Run) -> list[Check]:
    names = {i.channel_id: f"#{i.channel_name}" for i in run.incidents if i.channel_id}
    worst = {ch: busiest(times) for ch, times in run.channels.items()}
    mine = [worst.get(ch, 0) for ch in names]
    others = {ch: n for ch, n in worst.items() if ch not in names}
    names[run.announce] = "#incidents (announcements)"
    span = max(run.settled_at - run.t0, WINDOW_S)
    per_channel = sum(len(run.channels.get(ch, [])) for ch in names if ch != run.announce) / max(1, len(mine))
    print("Slack calls: " + ", ".join(f"{m} {n}" for m, n in run.calls.most_common()))
    print(
        f"messages (chat.postMessage + chat.update) per channel: incident channels {per_channel:.1f} each "
        f"({per_channel / span:.2f}/s over the run), most in any {WINDOW_S:g} s window: "
        + ", ".join(f"{n} in {c} channel(s)" for n, c in sorted(Counter(mine).items()))
        + "; "
        + ", ".join(f"{names.get(ch, ch)} {n}" for ch, n in others.items())
    )
    for ch in (ch for ch, n in worst.items() if n > MAX_PER_WINDOW):
        times = sorted(run.channels[ch])
        posts = sum(1 for m in run.methods[ch] if m == "chat.postMessage")
        print(
            f"  {names.get(ch, ch)}: {len(times)} messages ({posts} chat.postMessage), T0+{times[0] - run.t0:.2f} s "
            f"to T0+{times[-1] - run.t0:.2f} s; {worst[ch]} of them within {WINDOW_S:g} s"
        )
    most_mine, most_other = max(mine, default=0), max(others.values(), default=0)
    bound = f"<= {MAX_PER_WINDOW} messages in any {WINDOW_S:g} s window"
    return [
        (f"{bound} in each incident channel (max {most_mine})", most_mine <= MAX_PER_WINDOW),
        (f"{bound} in every other channel, announcements included (max {most_other})", most_other <= MAX_PER_WINDOW),
    ]


def report_alerts(run: Run, groups: dict[int, list[Incident]]) -> list[Check]:
    sent = sent_occurrences(run.storm)
    found: Counter[tuple[str, str]] = Counter()
    for counts in run.found.values():
        found.update(counts)
    n_sent = sum(len(occ) for occ in sent.values())
    lost = sum(len(occ - set(found)) for occ in sent.values())
    unacked = n_sent - sum(len(occ) for occ in run.acked.values())
    duplicated = sum(c - 1 for c in found.values() if c > 1)
    elsewhere = sum(
        1 for g, incidents in groups.items() if g >= 0 for i in incidents for o in run.found[i.id] if o not in sent[g]
    )
    statuses = Counter(status for occ in sent.values() for _, status in occ)
    print(
        f"alert occurrences posted: {n_sent} ({statuses['firing']} firing, {statuses['resolved']} resolved), never "
        f"answered 200: {unacked}; Alerted events in the timelines: {sum(found.values())}; lost {lost}, duplicated "
        f"{duplicated}, in another group's incident {elsewhere}" + ("" if run.settled else " (the bot had not settled)")
    )
    ok = lost == duplicated == elsewhere == 0 and run.settled
    return [(f"alerts lost == 0 ({lost}; duplicated {duplicated}, misplaced {elsewhere})", ok)]


def report(run: Run) -> int:
    groups = by_group(run)
    checks = report_posts(run) + report_incidents(run, groups) + report_slack(run) + report_alerts(run, groups)
    for what, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'} {what}")
    return 0 if all(ok for _, ok in checks) else 1


async def main(storm: Storm) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        run = await storm_the_bot(storm, Path(tmp))
    code = report(run)
    print(
        f"duration: {run.settled_at - run.t0:.1f} s from the first POST until the bot settled; "
        f"{time.monotonic() - started:.1f} s in all"
    )
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=Storm.groups)
    parser.add_argument("--alerts-per-group", type=int, default=Storm.alerts_per_group)
    parser.add_argument("--group-interval", type=float, default=Storm.group_interval, help="seconds")
    args = parser.parse_args()
    per_group = args.alerts_per_group
    storm = Storm(
        groups=args.groups, alerts_per_group=per_group, burst=per_group * 2 // 5, group_interval=args.group_interval
    )
    sys.exit(asyncio.run(main(storm)))
