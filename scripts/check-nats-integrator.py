#!/usr/bin/env python3
"""Proves deploy/nats/integrator-example.conf against a real nats-server.

    python3 -m pip install nats-py nkeys
    python3 scripts/check-nats-integrator.py "$(scripts/ensure-nats.sh)"

Starts its own nats-server (the path given as first argument) with the example file on a free
port, storage in a temporary folder, a random password for the services' user `chorus` and a
fresh integrator nkey in place of the example public key (the only change to the file). Then,
as the services, it creates the six event streams and the `integrator-acme` consumers and
publishes events of tenants acme and globex, and checks, as the integrator of acme:

- it receives acme's events live (`chorus.acme.>`), headers included, and none of globex;
- subscribing to `chorus.globex.>`, `chorus.>`, `>` or the services' subjects is refused;
- publishing anything into Chorus (events, service calls, JetStream API) is refused;
- its durable consumers give it acme's events, stored while it was away, and take its acks;
  another tenant's consumer is out of reach.

Prints one line per check and exits non-zero when any fails. Not run by CI.
"""

import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import nats
    import nkeys
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
except ImportError:
    sys.exit("needs nats-py and nkeys: python3 -m pip install nats-py nkeys")

CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "nats" / "integrator-example.conf"
DOMAINS = ["content", "share", "engagement", "gamification", "notification", "user"]
CONSUMER = "integrator-acme"
JS_PREFIX = "JS.CHORUS.API"  # where the integrator's account imports its consumers' API
QUIET = 1.0  # seconds to wait for something that must not arrive

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_user_nkey():
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    return seed.decode(), public


def stream_name(domain):
    return "CHORUS_" + domain.upper()


class Errors:
    """Collects the asynchronous errors the server sends to one connection."""

    def __init__(self):
        self.seen = []

    async def callback(self, err):
        self.seen.append(str(err).lower())

    async def wait_for(self, text, timeout=3.0):
        text = text.lower()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in e for e in self.seen):
                return True
            await asyncio.sleep(0.05)
        return False


async def collect(sub, seconds):
    got = []
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        try:
            got.append(await sub.next_msg(timeout=left))
        except nats.errors.TimeoutError:
            return got


SENT_HEADERS = {}  # event id -> the headers it was published with


async def publish_event(js, subject, n):
    """Publishes an event the way the services' outbox relay does (JetStream, headers)."""
    event_id = f"evt-{n}-{secrets.token_hex(4)}"
    domain = subject.split(".")[2]
    headers = {
        "Nats-Msg-Id": event_id,
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": f"chorus.{domain}.v1.Published",
        "ce-source": f"/chorus/{domain}",
        "Content-Type": "application/protobuf",
    }
    SENT_HEADERS[event_id] = headers
    await js.publish(subject, f"payload {n}".encode(), headers=headers)
    return event_id


async def run(url, password, seed):
    # --- who may connect ---------------------------------------------------------------------
    for label, kwargs in [
        ("without credentials", {}),
        ("as chorus with a wrong password", {"user": "chorus", "password": "wrong"}),
        ("with an unknown nkey", {"nkeys_seed_str": new_user_nkey()[0]}),
    ]:
        refusal = Errors()
        try:
            nc = await nats.connect(
                url, allow_reconnect=False, connect_timeout=2, error_cb=refusal.callback, **kwargs
            )
            await nc.close()
            check(False, f"connecting {label} is refused")
        except Exception as err:
            check("authorization violation" in str(err).lower(), f"connecting {label} is refused (Authorization Violation)")

    # --- the services set up streams and the integrator's consumers ------------------------
    svc = await nats.connect(url, user="chorus", password=password)
    sjs = svc.jetstream()
    for domain in DOMAINS:
        await sjs.add_stream(StreamConfig(name=stream_name(domain), subjects=[f"chorus.*.{domain}.>"]))
        await sjs.add_consumer(
            stream_name(domain),
            ConsumerConfig(
                durable_name=CONSUMER,
                filter_subject=f"chorus.acme.{domain}.>",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
            ),
        )
    # globex's consumer exists, and must stay out of acme's reach.
    await sjs.add_consumer(
        "CHORUS_SHARE",
        ConsumerConfig(durable_name="integrator-globex", filter_subject="chorus.globex.share.>", ack_policy=AckPolicy.EXPLICIT),
    )
    check(True, "the services (user chorus) created 6 streams and the integrator-acme consumers")

    # The services watch what reaches their account from elsewhere.
    watch_events = await svc.subscribe("chorus.>")
    watch_rpc = await svc.subscribe("rpc.>")
    await svc.flush()

    # --- the integrator, live ----------------------------------------------------------------
    errors = Errors()
    integ = await nats.connect(url, nkeys_seed_str=seed, error_cb=errors.callback, allow_reconnect=False)
    live = await integ.subscribe("chorus.acme.>")
    await integ.flush()

    acme_share = await publish_event(sjs, "chorus.acme.share.published.v1", 1)
    acme_content = await publish_event(sjs, "chorus.acme.content.published.v1", 2)
    globex_share = await publish_event(sjs, "chorus.globex.share.published.v1", 3)
    got = await collect(live, QUIET)
    subjects = sorted(m.subject for m in got)
    check(
        subjects == ["chorus.acme.content.published.v1", "chorus.acme.share.published.v1"],
        f"live: receives chorus.acme.share.published.v1 and chorus.acme.content.published.v1, not globex's (got {subjects})",
    )
    ids = {m.subject: (m.headers or {}).get("Nats-Msg-Id") for m in got}
    check(
        ids.get("chorus.acme.share.published.v1") == acme_share
        and ids.get("chorus.acme.content.published.v1") == acme_content
        and all(m.headers == SENT_HEADERS[m.headers["Nats-Msg-Id"]] for m in got),
        "live: the headers (Nats-Msg-Id, ce-*, Content-Type) arrive unchanged",
    )

    # --- what the integrator may not subscribe to ---------------------------------------------
    denied_subs = {}
    for subject in ["chorus.globex.>", "chorus.globex.share.published.v1", "chorus.>", ">", "rpc.chorus.>", "$JS.API.>"]:
        denied_subs[subject] = await integ.subscribe(subject)
        await integ.flush()
        refused = await errors.wait_for(f'permissions violation for subscription to "{subject}"')
        check(refused, f"subscribing to {subject} is refused (Permissions Violation)")
    await publish_event(sjs, "chorus.globex.share.published.v1", 4)
    leaked = []
    for subject, sub in denied_subs.items():
        leaked += [m.subject for m in await collect(sub, 0.2)]
    leaked += [m.subject for m in await collect(live, QUIET) if not m.subject.startswith("chorus.acme.")]
    check(not leaked, f"nothing of globex reaches the integrator (got {leaked})")

    # --- what the integrator may not publish --------------------------------------------------
    for subject in [
        "chorus.acme.share.published.v1",
        "chorus.globex.share.published.v1",
        "rpc.chorus.identity.get_tenant",
        "$JS.API.STREAM.INFO.CHORUS_SHARE",
        "$JS.API.STREAM.MSG.GET.CHORUS_SHARE",
        "$JS.API.CONSUMER.CREATE.CHORUS_SHARE.mine.chorus.globex.share.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.CHORUS_SHARE.mine",
        "$JS.API.CONSUMER.MSG.NEXT.CHORUS_SHARE.integrator-acme",
        "JS.CHORUS.API.CONSUMER.MSG.NEXT.CHORUS_SHARE.integrator-globex",
        "JS.CHORUS.API.CONSUMER.INFO.CHORUS_SHARE.integrator-globex",
        "JS.CHORUS.API.CONSUMER.CREATE.CHORUS_SHARE.mine.chorus.globex.share.>",
        "$JS.ACK.CHORUS_SHARE.integrator-globex.1.1.1.1.0",
    ]:
        await integ.publish(subject, b"{}", reply=integ.new_inbox())
        await integ.flush()
        refused = await errors.wait_for(f'permissions violation for publish to "{subject}"')
        check(refused, f"publishing to {subject} is refused (Permissions Violation)")
    arrived = [m.subject for m in await collect(watch_events, QUIET)]
    arrived += [m.subject for m in await collect(watch_rpc, 0.1)]
    expected = [
        "chorus.acme.share.published.v1",
        "chorus.acme.content.published.v1",
        "chorus.globex.share.published.v1",
        "chorus.globex.share.published.v1",
    ]
    check(arrived == expected, f"the services' account saw only its own 4 events (got {len(arrived)})")
    info = await sjs.stream_info("CHORUS_SHARE")
    check(info.state.messages == 3, f"CHORUS_SHARE holds only the services' 3 events (holds {info.state.messages})")

    # --- the integrator, durable (JetStream) --------------------------------------------------
    ijs = integ.jetstream(prefix=JS_PREFIX)
    cinfo = await ijs.consumer_info("CHORUS_SHARE", CONSUMER)
    check(
        cinfo.config.filter_subject == "chorus.acme.share.>" and cinfo.num_pending == 1,
        f"durable: reads its consumer's info (filter {cinfo.config.filter_subject}, {cinfo.num_pending} pending)",
    )
    fetched = {}
    for domain in ["share", "content"]:
        psub = await ijs.pull_subscribe_bind(CONSUMER, stream=stream_name(domain))
        msgs = await psub.fetch(10, timeout=2)
        fetched[domain] = [(m.subject, (m.headers or {}).get("Nats-Msg-Id")) for m in msgs]
        for m in msgs:
            await m.ack()
        await psub.unsubscribe()
    check(
        fetched
        == {
            "share": [("chorus.acme.share.published.v1", acme_share)],
            "content": [("chorus.acme.content.published.v1", acme_content)],
        },
        f"durable: fetches acme's stored events from CHORUS_SHARE and CHORUS_CONTENT, not globex's (got {fetched})",
    )
    await integ.flush()
    await asyncio.sleep(0.2)
    acked = True
    for domain in ["share", "content"]:
        ci = await sjs.consumer_info(stream_name(domain), CONSUMER)
        acked &= ci.num_ack_pending == 0 and ci.num_pending == 0 and ci.delivered.consumer_seq == 1
    check(acked, "durable: its acks reach the consumers (nothing pending, nothing awaiting ack)")

    # Away, then back: what was published meanwhile waits for it, once.
    await integ.close()
    while_away = []
    for n in range(5, 8):
        while_away.append(await publish_event(sjs, "chorus.acme.share.published.v1", n))
        await publish_event(sjs, "chorus.globex.share.published.v1", 10 + n)
    errors = Errors()
    integ = await nats.connect(url, nkeys_seed_str=seed, error_cb=errors.callback, allow_reconnect=False)
    ijs = integ.jetstream(prefix=JS_PREFIX)
    psub = await ijs.pull_subscribe_bind(CONSUMER, stream="CHORUS_SHARE")
    msgs = await psub.fetch(10, timeout=2)
    got = [(m.subject, (m.headers or {}).get("Nats-Msg-Id")) for m in msgs]
    for m in msgs:
        await m.ack_sync()
    check(
        got == [("chorus.acme.share.published.v1", event_id) for event_id in while_away],
        f"durable: after reconnecting, one fetch gets the 3 acme events published while away, in order, not globex's (got {got})",
    )
    try:
        again = await psub.fetch(10, timeout=1)
    except nats.errors.TimeoutError:
        again = []
    check(not again, f"durable: acked events are not delivered again (got {len(again)})")

    # The other tenant's consumer, through the JetStream API as a client library calls it.
    try:
        await ijs.consumer_info("CHORUS_SHARE", "integrator-globex", timeout=1)
        check(False, "durable: integrator-globex's info is out of reach")
    except Exception:
        refused = await errors.wait_for('permissions violation for publish to "js.chorus.api.consumer.info.chorus_share.integrator-globex"')
        check(refused, "durable: integrator-globex's info is out of reach (Permissions Violation)")
    globex = await ijs.pull_subscribe_bind("integrator-globex", stream="CHORUS_SHARE")
    try:
        stolen = await globex.fetch(1, timeout=1)
    except Exception:
        stolen = []
    refused = await errors.wait_for('permissions violation for publish to "js.chorus.api.consumer.msg.next.chorus_share.integrator-globex"')
    check(refused and not stolen, "durable: fetching from integrator-globex is refused (Permissions Violation)")
    ci = await sjs.consumer_info("CHORUS_SHARE", "integrator-globex")
    check(ci.delivered.stream_seq == 0, "durable: integrator-globex delivered nothing")

    await integ.close()
    await svc.close()


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PATH_TO_NATS_SERVER   (e.g. \"$(scripts/ensure-nats.sh)\")")
    server = sys.argv[1]
    text = CONFIG.read_text()
    keys = re.findall(r"\bnkey: (U[A-Z2-7]{55})\b", text)
    if len(keys) != 1:
        sys.exit(f"{CONFIG}: expected one integrator nkey, found {len(keys)}")
    seed, public = new_user_nkey()
    password = secrets.token_urlsafe(24)
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="chorus-nats-integrator-"))
    conf = tmp / "integrator.conf"
    conf.write_text(text.replace(keys[0], public))
    log = open(tmp / "nats-server.log", "w")
    env = dict(os.environ, CHORUS_NATS_PASSWORD=password)
    proc = subprocess.Popen(
        [server, "-c", str(conf), "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp / "js")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                log.flush()
                sys.exit(f"nats-server exited:\n{(tmp / 'nats-server.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("nats-server did not start listening within 10 s")
                time.sleep(0.05)
        print(f"nats-server {server} on 127.0.0.1:{port} with {CONFIG.name}", flush=True)
        asyncio.run(run(f"nats://127.0.0.1:{port}", password, seed))
    except Exception as err:
        failures.append(f"{type(err).__name__}: {err}")
        print(f"FAIL {type(err).__name__}: {err}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if failures:
            print(f"server log kept in {tmp / 'nats-server.log'}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
