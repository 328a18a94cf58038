"""The evidence panel's chart in Block Kit: the uploaded image by its Slack file id, or a line saying why there is
none, and what the chart left out."""

from __future__ import annotations

from bot.models.chart import ChartImage
from bot.models.evidence import Evidence
from bot.render.blocks import Block, clip, context
from bot.render.mrkdwn import escape

MAX_BLOCKS = 50
"""Blocks one Slack message holds."""
IMAGE_TEXT_LIMIT = 2000
"""An image block's alt_text and title: at most 2,000 characters each (Block Kit's image block)."""


def image_block(image: ChartImage) -> Block:
    """A slack_file by id: the file stays private to firebreak (uploaded to no channel) and the message shows it."""
    return {
        "type": "image",
        "slack_file": {"id": image.file_id},
        "alt_text": image.alt_text[:IMAGE_TEXT_LIMIT] or "chart",
        "title": {"type": "plain_text", "text": image.title[:IMAGE_TEXT_LIMIT]},
    }


def chart_blocks(evidence: Evidence) -> list[Block]:
    blocks: list[Block] = []
    if evidence.chart is not None:
        blocks.append(image_block(evidence.chart))
    notes = [escape(evidence.chart_note)] if evidence.chart_note else []
    if evidence.chart_left_out:
        missing = "; ".join(f"{escape(x.name)} ({escape(x.reason)})" for x in evidence.chart_left_out)
        notes.append(f"The chart leaves out: {missing}")
    if notes:
        blocks.append(context(clip(" ".join(notes), 2900)))
    return blocks


def with_chart(panel: tuple[str, list[Block]], evidence: Evidence) -> tuple[str, list[Block]]:
    """The panel with its chart (or why there is none) under its first two lines (the head and the verdict), as
    room allows: a panel already at Slack's block limit keeps its numbers."""
    text, blocks = panel
    extra = chart_blocks(evidence)[: max(0, MAX_BLOCKS - len(blocks))]
    return text, [*blocks[:2], *extra, *blocks[2:]]
