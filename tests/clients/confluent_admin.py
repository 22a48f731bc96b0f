#!/usr/bin/env python3
"""confluent-kafka's AdminClient: list_offsets with every OffsetSpec
(earliest, latest, by timestamp and max_timestamp: ListOffsets -3, KIP-734),
and describe_topics / describe_cluster / describe_consumer_groups with
include_authorized_operations (no ACLs: every operation allowed, as Kafka
without an authorizer reports).

Usage: confluent_admin.py HOST:PORT
"""
import sys
import time
import uuid

try:
    from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, Producer,
                                 TopicCollection, TopicPartition)
    from confluent_kafka.admin import AclOperation, AdminClient, NewTopic, OffsetSpec
except ImportError as e:
    sys.exit(f"confluent-kafka is not installed ({e}): run tests/run")


def fail(msg):
    print(f"confluent list_offsets check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    bs = sys.argv[1]
    topic = f"confluent-offsets-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 0})
    base = 1_700_000_000_000
    # Timestamps out of order, the largest twice: max_timestamp is the first.
    stamps = [base + 1000, base + 5000, base + 3000, base + 5000, base + 2000]
    for i, ts in enumerate(stamps):
        p.produce(topic, value=f"r{i}".encode(), partition=0, timestamp=ts)
        p.flush(30)  # one batch per record: the broker must look inside batches too
    tp = TopicPartition(topic, 0)

    def offset(spec):
        r = admin.list_offsets({tp: spec}, request_timeout=30)[tp].result(30)
        return (r.offset, r.timestamp)

    checks = {
        "earliest": (OffsetSpec.earliest(), 0),
        "latest": (OffsetSpec.latest(), 5),
        "for_timestamp(base+2500)": (OffsetSpec.for_timestamp(base + 2500), 1),
        "max_timestamp": (OffsetSpec.max_timestamp(), 1),
    }
    for name, (spec, want) in checks.items():
        got, ts = offset(spec)
        if got != want:
            fail(f"{name}: offset {got}, expected {want}")
    got, ts = offset(OffsetSpec.max_timestamp())
    if ts != base + 5000:
        fail(f"max_timestamp: timestamp {ts}, expected {base + 5000}")

    # Authorized operations.
    t = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic].result(30)
    want_topic = {AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
                  AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
                  AclOperation.ALTER_CONFIGS}
    if set(t.authorized_operations or []) != want_topic:
        fail(f"topic authorized operations: {t.authorized_operations}")
    c = admin.describe_cluster(include_authorized_operations=True).result(30)
    want_cluster = {AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE,
                    AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS,
                    AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE}
    if set(c.authorized_operations or []) != want_cluster:
        fail(f"cluster authorized operations: {c.authorized_operations}")
    group = f"ops-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    # The group coordinator may still be loading on first use: retriable.
    for attempt in range(50):
        try:
            consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
            break
        except Exception as e:
            if attempt == 49 or "LOAD_IN_PROGRESS" not in str(e) and "NOT_AVAILABLE" not in str(e):
                raise
            time.sleep(0.2)
    consumer.close()
    g = admin.describe_consumer_groups([group], include_authorized_operations=True)[group].result(30)
    if set(g.authorized_operations or []) != {AclOperation.READ, AclOperation.DELETE, AclOperation.DESCRIBE}:
        fail(f"group authorized operations: {g.authorized_operations}")
    # Not asked for: not given.
    t = admin.describe_topics(TopicCollection([topic]))[topic].result(30)
    if t.authorized_operations:
        fail(f"topic operations given unasked: {t.authorized_operations}")
    # Manual replica assignment: the partition count comes from it.
    manual = f"manual-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(manual, num_partitions=22, replication_factor=-1, replica_assignment=[[1]] * 22)])[manual].result(30)
    d = admin.describe_topics(TopicCollection([manual]))[manual].result(30)
    if len(d.partitions) != 22:
        fail(f"manual assignment of 22 partitions made {len(d.partitions)}")
    try:
        bad = f"badassign-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(bad, num_partitions=2, replication_factor=-1, replica_assignment=[[1], [7]])])[bad].result(30)
        fail("an assignment to a broker that does not exist was accepted")
    except Exception as e:
        if "INVALID_REPLICA_ASSIGNMENT" not in str(e) and "replica assignment" not in str(e).lower():
            fail(f"bad assignment: unexpected error {e}")
    print("confluent admin ok: manual assignments, list_offsets (earliest, latest, by timestamp, max timestamp), authorized operations")


if __name__ == "__main__":
    main()
