"""The hub's routing and authorization, its bounded queues, and the embedded-server workarounds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from webapp import nx_compat
from webapp.hub import (
    CutOff,
    MessageEvent,
    SidebarEvent,
    Subscription,
    TypingEvent,
    message_recipients,
    typing_recipients,
)
from webapp.models import Message, Typing

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE, BOB, CAROL = "a" * 24, "b" * 24, "c" * 24


def message(conversation: str, participants: list[str]) -> Message:
    return Message(
        conversation=conversation,
        participants=participants,
        sender_id=participants[0] if participants else ALICE,
        sender_name="alice",
        body="hi",
        created_at=NOW,
    )


@pytest.mark.parametrize(
    ("conversation", "participants", "connected", "expected"),
    [
        ("public", [], {ALICE, BOB, CAROL}, {ALICE, BOB, CAROL}),
        ("public", [], set(), set()),
        (f"dm:{ALICE}:{BOB}", [ALICE, BOB], {ALICE, BOB, CAROL}, {ALICE, BOB}),
        (f"dm:{ALICE}:{BOB}", [ALICE, BOB], {CAROL}, set()),
        (f"dm:{ALICE}:{BOB}", [ALICE, BOB], {BOB}, {BOB}),
        (f"dm:{ALICE}:{ALICE}", [ALICE], {ALICE, BOB}, {ALICE}),
    ],
)
def test_message_recipients(
    conversation: str, participants: list[str], connected: set[str], expected: set[str]
) -> None:
    assert message_recipients(message(conversation, participants), connected) == expected


@pytest.mark.parametrize(
    ("conversation", "participants", "expected"),
    [
        ("public", [], {BOB, CAROL}),  # never the typist
        (f"dm:{ALICE}:{BOB}", [ALICE, BOB], {BOB}),
        (f"dm:{ALICE}:{ALICE}", [ALICE], set()),
    ],
)
def test_typing_recipients(conversation: str, participants: list[str], expected: set[str]) -> None:
    typing = Typing(
        id=f"{ALICE}:{conversation}",
        user_id=ALICE,
        username="alice",
        conversation=conversation,
        participants=participants,
        at=NOW,
    )
    assert typing_recipients(typing, {ALICE, BOB, CAROL}) == expected


async def test_subscription_delivers_in_order() -> None:
    subscription = Subscription(ALICE)
    events = [MessageEvent(f"nx:{n}", message("public", [])) for n in range(3)]
    for event in events:
        subscription.push(event)
    assert [await subscription.next() for _ in events] == events


async def test_subscription_waits_for_the_next_event() -> None:
    subscription = Subscription(ALICE)
    waiting = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    assert not waiting.done()
    event = MessageEvent("nx:1", message("public", []))
    subscription.push(event)
    assert await waiting is event


async def test_a_full_queue_cuts_the_stream_off() -> None:
    subscription = Subscription(ALICE, limit=3)
    for n in range(4):
        subscription.push(MessageEvent(f"nx:{n}", message("public", [])))
    assert subscription.cut_off
    assert not subscription.events  # memory released at once
    with pytest.raises(CutOff):
        await subscription.next()
    subscription.push(MessageEvent("nx:9", message("public", [])))
    assert not subscription.events


async def test_sidebar_refreshes_coalesce() -> None:
    subscription = Subscription(ALICE)
    subscription.push(SidebarEvent())
    subscription.push(SidebarEvent())
    typing = Typing(
        id="x", user_id=BOB, username="bob", conversation="public", participants=[], at=NOW
    )
    subscription.push(TypingEvent(typing))
    subscription.push(SidebarEvent())
    assert [type(e) for e in subscription.events] == [SidebarEvent, TypingEvent]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [("nx:9", "nx:10"), ("nx:99", "nx:1000"), ("8200000001", "8200000002"), ("82AB", "82AC")],
)
def test_tokens_sort_in_commit_order(earlier: str, later: str) -> None:
    assert nx_compat.token_sort_key(earlier) < nx_compat.token_sort_key(later)


@pytest.mark.parametrize(
    ("cursor", "position", "unusable"),
    [
        ("nx:5", "nx:10", False),
        ("nx:10", "nx:10", False),
        ("nx:11", "nx:10", True),  # from a database that was reset
        ("82AB", "nx:10", True),  # not a token of this server
        ("82AB", "82FF", False),  # MongoDB judges its own tokens
        ("nx:3", "", False),
    ],
)
def test_cannot_replay(cursor: str, position: str, unusable: bool) -> None:
    assert nx_compat.cannot_replay(cursor, position) is unusable


async def test_idle_pacer_pauses_longer_while_idle_and_wakes_on_write() -> None:
    pacer = nx_compat.IdlePacer(await_secs=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pacer.pause_after_empty_batch(waited_secs=0.0)
    first = loop.time() - started
    assert first >= nx_compat.IDLE_PAUSES_SECS[0] * 0.9
    # A write by this process ends the pause at once, however long it would have been.
    for _ in range(len(nx_compat.IDLE_PAUSES_SECS)):
        pacer._quick_empties += 1
    pause = asyncio.create_task(pacer.pause_after_empty_batch(waited_secs=0.0))
    await asyncio.sleep(0)
    nx_compat.wake_on_write._wake()
    await asyncio.wait_for(pause, timeout=0.5)
    # A real MongoDB that held the getMore for the await time is never paused.
    started = loop.time()
    await pacer.pause_after_empty_batch(waited_secs=1.0)
    assert loop.time() - started < nx_compat.IDLE_PAUSES_SECS[0]
