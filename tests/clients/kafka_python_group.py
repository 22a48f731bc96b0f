#!/usr/bin/env python3
"""kafka-python group consumers against sluice.

Usage: kafka_python_group.py HOST:PORT
Two KafkaConsumers join one group on a 3-partition topic; once they split the
partitions, 3000 records are produced and must be consumed exactly once across
the two (commits on every batch and on revocation). The admin client must see
the group Stable with 2 members while they run, and after they close, Empty
with offsets at the log end. The last line reports the committed offsets:
COMMITTED group topic p:o,...  Exits non-zero with a message on any mismatch.
"""
import sys
import time
import uuid

try:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import CommitFailedError, RebalanceInProgressError
except ImportError as e:
    sys.exit(f"kafka-python is not installed ({e}): run tests/run")

PARTITIONS = 3
RECORDS = 3000


def fail(msg):
    print(f"kafka-python group check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def commit(consumer):
    # A commit racing a rebalance fails; the records then come again
    # (at-least-once), which the exactly-once check below would report.
    try:
        consumer.commit()
    except (CommitFailedError, RebalanceInProgressError) as e:
        print(f"commit failed: {e!r}", file=sys.stderr)


def main():
    bs = sys.argv[1]
    topic = f"kp-group-{uuid.uuid4().hex[:8]}"
    group = f"{topic}-g"
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=30000)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])

    consumers = []
    for i in range(2):
        c = KafkaConsumer(bootstrap_servers=bs, group_id=group, client_id=f"kp-{i}", enable_auto_commit=False,
                          auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=500,
                          request_timeout_ms=30000)
        c.subscribe([topic])
        consumers.append(c)

    seen = []  # (consumer index, partition, offset, value)

    def poll_all():
        for i, c in enumerate(consumers):
            for tp, msgs in c.poll(timeout_ms=100).items():
                seen.extend((i, tp.partition, m.offset, m.value) for m in msgs)
            commit(c)

    deadline = time.time() + 60
    while True:
        poll_all()
        parts = [{tp.partition for tp in c.assignment()} for c in consumers]
        if all(parts) and sorted(p for s in parts for p in s) == list(range(PARTITIONS)):
            break
        if time.time() > deadline:
            fail(f"the two consumers never split the partitions: {parts}")

    desc = admin.describe_groups([group])[group]
    if desc["error"] or desc["group_state"] != "Stable" or len(desc["members"]) != 2:
        fail(f"describe_groups while consuming: {desc}")

    producer = KafkaProducer(bootstrap_servers=bs, acks="all", enable_idempotence=False, linger_ms=5)
    for i in range(RECORDS):
        producer.send(topic, value=f"v-{i}".encode(), partition=i % PARTITIONS)
    producer.flush(timeout=60)
    producer.close()

    deadline = time.time() + 60
    while len(seen) < RECORDS:
        if time.time() > deadline:
            fail(f"consumed {len(seen)} of {RECORDS}")
        poll_all()
    for _ in range(5):  # anything extra would be a duplicate
        poll_all()
    values = sorted(v for (_, _, _, v) in seen)
    if values != sorted(f"v-{i}".encode() for i in range(RECORDS)):
        fail(f"{len(seen)} records consumed, {len(set(values))} distinct: not exactly once")
    owners = {}
    for i, p, _, _ in seen:
        owners.setdefault(p, set()).add(i)
    if any(len(o) != 1 for o in owners.values()) or len({next(iter(o)) for o in owners.values()}) != 2:
        fail(f"partition owners: {owners}")
    for c in consumers:
        c.close()

    desc = admin.describe_groups([group])[group]
    if desc["error"] or desc["group_state"] != "Empty" or desc["members"]:
        fail(f"describe_groups after close: {desc}")
    offsets = admin.list_group_offsets(group)[group]
    ours = {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}
    if ours != {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}:
        fail(f"committed offsets {ours}")
    admin.close()
    print(f"kafka-python group OK: {RECORDS} records once across 2 members")
    print(f"COMMITTED {group} {topic} " + ",".join(f"{p}:{o}" for p, o in sorted(ours.items())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: kafka_python_group.py HOST:PORT")
    main()
