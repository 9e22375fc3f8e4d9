"""Two browsers and a terminal-side client chat in one room while a backend is killed.

Everyone must end with exactly the server's sequence: the page's timeline (read from its
DOM) is compared, as ``(epoch, seq, id)`` triples, with what PostgreSQL archived; nothing
typed is lost, nothing shows twice, nothing stays pending.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import anyio
import pytest

from tests.browser.browsers import SETTLED, User, Web, artifact, contrast, room_name
from tests.helpers import ChatClient, chat_client, contiguous
from tuitalk.launcher.cluster import LocalCluster

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.browser]

Triple = tuple[str, int, str]


def server_sequence(cluster: LocalCluster, room: str) -> list[tuple[str, int, str, str]]:
    """``(epoch, seq, id, text)`` of every archived message of ``room``, in order."""
    assert cluster.pg is not None
    out = cluster.pg.query(
        "SELECT epoch, seq, msg_id, replace(body, E'\\n', ' ') FROM messages "
        f"WHERE room = '{room}' ORDER BY seq")
    rows = []
    for line in out.splitlines():
        epoch, seq, mid, text = line.split("|", 3)
        rows.append((epoch, int(seq), mid, text))
    return rows


async def eventually(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await anyio.sleep(0.1)


async def talk(user: User, prefix: str, n: int, typed: list[str], every_s: float) -> None:
    for i in range(n):
        text = f"{prefix} {i}"
        await user.type_line(text)
        typed.append(text)
        await anyio.sleep(every_s)


async def talk_term(term: ChatClient, room: str, prefix: str, n: int, typed: list[str],
                    every_s: float) -> None:
    for i in range(n):
        text = f"{prefix} {i}"
        term.say(room, text)
        typed.append(text)
        await anyio.sleep(every_s)


async def everyone_talks(users: list[User], term: ChatClient, room: str, n: int,
                         typed: dict[str, list[str]], phase: str) -> None:
    async with anyio.create_task_group() as tg:
        for u in users:
            tg.start_soon(talk, u, f"{u.label}-{phase}", n, typed[u.label], 0.06)
        tg.start_soon(talk_term, term, room, f"term-{phase}", n, typed["term"], 0.06)


async def test_two_browsers_and_a_terminal_survive_a_backend_kill(
    healed: LocalCluster, web: Web, measure: Any,
) -> None:
    cluster = healed
    room = room_name()
    alice = await web.user("alice")
    bob = await web.user("bob")
    async with anyio.create_task_group() as tg:
        tg.start_soon(alice.open, f"#{room}")
        tg.start_soon(bob.open, f"#{room}")
    await alice.type_line("/nick alice")
    await bob.type_line("/nick bob")
    for u in (alice, bob):
        await u.wait_for("n => window.tuitalk.state().name === n", u.label)

    async with chat_client(cluster.url, "term", name="carol") as term:
        term.driver.join(room)
        await term.wait_joined(room)
        typed: dict[str, list[str]] = {"alice": [], "bob": [], "term": []}

        await everyone_talks([alice, bob], term, room, 5, typed, "before")
        n_before = sum(len(t) for t in typed.values())
        for u in (alice, bob):
            await u.wait_for(
                "([r, n]) => window.tuitalk.shown(r).filter(Boolean).length >= n",
                [room, n_before], timeout_s=20)

        # Kill the backend alice is on, in the middle of the conversation: everyone keeps
        # typing through the outage.
        victim = (await alice.state())["backend"]
        assert victim.startswith("backend-")
        async with anyio.create_task_group() as tg:
            tg.start_soon(everyone_talks, [alice, bob], term, room, 8, typed, "during")
            await anyio.sleep(0.15)
            cluster.kill(victim)

        all_typed = [t for texts in typed.values() for t in texts]

        async def settled() -> bool:
            if set(all_typed) - {m[3] for m in server_sequence(cluster, room)}:
                return False
            for u in (alice, bob):
                if await u.pending(room):
                    return False
            return True

        await eventually(settled, 40, "every message archived and acknowledged")
        server = server_sequence(cluster, room)
        expected: list[Triple] = [(e, s, i) for e, s, i, _ in server]

        async def all_shown() -> bool:
            for u in (alice, bob):
                if await u.shown(room) != expected:
                    return False
            term_ids = {m.id for m in term.shown(room)}
            return {i for _, _, i in expected[-len(all_typed):]} <= term_ids

        try:
            await eventually(all_shown, 20, "every participant showing the server's sequence")
        except AssertionError:
            for u in (alice, bob):
                got = await u.shown(room)
                missing = [t for t in expected if t not in got]
                extra = [t for t in got if t not in expected]
                print(u.label, "missing", missing[:5], "extra", extra[:5], "len", len(got))
            raise

        # The server's own sequence: no text twice, none missing, contiguous seqs.
        texts = [m[3] for m in server]
        dup = [t for t, c in Counter(texts).items() if c > 1 and t in all_typed]
        assert not dup, f"shown twice: {dup}"
        assert set(all_typed) <= set(texts)
        assert [s for _, s, _ in expected] == list(range(1, len(expected) + 1))

        # Each page showed exactly that sequence, from the room's first message.
        for u in (alice, bob):
            assert await u.shown(room) == expected, u.label
            assert await u.page.get_attribute(f"section[data-room='{room}']", "data-dups") \
                == "0"
            assert await u.pending(room) == []
        # The terminal client: exactly the server's sequence from its own join on.
        term_msgs = term.shown(room)
        assert contiguous(term_msgs)
        start = next(k for k, t in enumerate(expected) if t[2] == term_msgs[0].id)
        assert [(m.epoch, m.seq, m.id) for m in term_msgs] == expected[start:]

        # Alice went through a reconnect and the page says how long it took.
        assert (await alice.state())["backend"] != victim
        outage = float(await alice.page.get_attribute("#status", "data-since") or "nan")
        measure("browser reconnect after backend SIGKILL", outage)
        assert outage < 5.0

        # The log followed the conversation: the newest line is in view.
        log = alice.page.locator(f"section[data-room='{room}']")
        assert await log.evaluate("l => l.scrollHeight - l.scrollTop - l.clientHeight") < 48
        await alice.page.screenshot(path=str(artifact("browser-conversation.png")))
        await check_contrast(alice)
    web.assert_no_errors()


async def test_frozen_backend_is_detected_and_left_without_losing_a_message(
    healed: LocalCluster, web: Web, measure: Any,
) -> None:
    """A frozen backend never closes the socket: the page notices the silence (heartbeat),
    moves to another backend, and what was typed meanwhile arrives once."""
    cluster = healed
    room = room_name("z")
    u = await web.user("dana")
    await u.open(f"#{room}")
    await u.type_line("before the freeze")
    await u.wait_for(SETTLED, [room, 2])
    frozen = (await u.state())["backend"]
    # Record the connection states the page goes through (test instrumentation only).
    await u.page.evaluate("""() => {
      window.__states = [];
      new MutationObserver(() => window.__states.push(document.body.dataset.state))
        .observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
    }""")
    cluster.freeze(frozen)
    frozen_at = time.monotonic()
    await u.type_line("typed into a frozen backend")
    [pending] = await u.pending(room)
    await u.wait_for("b => window.tuitalk.state().state === 'connected'"
                     " && window.tuitalk.state().backend !== b", frozen, timeout_s=30)
    states = await u.page.evaluate("window.__states")
    assert "reconnecting" in states, states
    assert "via backend-" in await u.page.inner_text("#status")
    await u.wait_for("r => !window.tuitalk.pending(r).length", room, timeout_s=20)
    measure("frozen backend: freeze to the message typed meanwhile delivered",
            time.monotonic() - frozen_at)
    ids = [i for _, _, i in await u.shown(room)]
    assert ids.count(pending["id"]) == 1
    seqs = [s for _, s, _ in await u.shown(room)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    web.assert_no_errors()


# -- accessibility: contrast of everything the page draws ------------------------------------

_CONTRAST_JS = """
() => {
  // Probe lines for states the conversation may not be in right now.
  const log = document.querySelector('#logs section[role=log]:not([hidden]) ol.msgs');
  const probes = [];
  const add = (cls, html) => {
    const li = document.createElement('li');
    li.className = cls;
    for (const [c, t] of html) {
      const s = document.createElement('span'); s.className = c; s.textContent = t;
      li.append(s);
    }
    log.append(li); probes.push(li);
  };
  add('msg pending', [['nick c0', 'me'], ['body', 'pending'], ['state', ' (sending)']]);
  add('msg failed', [['body', 'refused'], ['state', ' (not sent)']]);
  add('sys error', [['body', 'error note']]);
  add('msg k-join', [['nick c1', 'x'], ['body', 'joined']]);
  for (let i = 0; i < 8; i++) add('msg', [['nick c' + i, 'nick' + i]]);
  const parse = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 4).map(Number);
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el.checkVisibility()) continue;
    if (el.closest('.visually-hidden')) continue;
    out.push([el.tagName + '.' + el.className, n.textContent.slice(0, 30),
              parse(getComputedStyle(el).color).slice(0, 3), bgOf(el)]);
  }
  for (const p of probes) p.remove();
  return out;
}
"""


async def check_contrast(user: User) -> None:
    rows = await user.page.evaluate(_CONTRAST_JS)
    assert len(rows) > 20
    bad = []
    for where, sample, fg, bg in rows:
        ratio = contrast(tuple(fg), tuple(bg))
        if ratio < 4.5:
            bad.append((where, sample, round(ratio, 2)))
    assert not bad, f"text below 4.5:1 contrast: {bad[:10]}"
