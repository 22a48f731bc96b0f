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
    from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError,
                                 KafkaException, Producer, TopicCollection, TopicPartition)
    from confluent_kafka.admin import (AclOperation, AdminClient, AlterConfigOpType, ConfigEntry,
                                       ConfigResource, NewPartitions, NewTopic, OffsetSpec,
                                       ResourceType)
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
    # CreatePartitions with assignments: placed as asked; an unknown broker refused.
    admin.create_partitions([NewPartitions(manual, 24, replica_assignment=[[1], [1]])])[manual].result(30)
    d = admin.describe_topics(TopicCollection([manual]))[manual].result(30)
    if len(d.partitions) != 24 or [r.id for r in d.partitions[23].replicas] != [1]:
        fail(f"create_partitions with an assignment made {d.partitions}")
    try:
        admin.create_partitions([NewPartitions(manual, 25, replica_assignment=[[7]])])[manual].result(30)
        fail("new partitions on a broker that does not exist were accepted")
    except KafkaException as e:
        if e.args[0].code() != KafkaError.INVALID_REPLICA_ASSIGNMENT:
            fail(f"create_partitions bad assignment: unexpected error {e}")
    # Topic configs: Kafka 4's keys, checked and stored; compression.type
    # honoured (batches re-encoded); list keys edited with APPEND/SUBTRACT.
    cfg_topic = f"configs-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(cfg_topic, 1, 1, config={
        "compression.type": "lz4", "delete.retention.ms": "900", "segment.jitter.ms": "10"})])[cfg_topic].result(30)
    for bad, why in [({"retention.ms": "-5"}, "at least -1"), ({"no.such.key": "1"}, "Unknown topic config"),
                     ({"message.format.version": "3.0"}, "Unknown topic config")]:
        name = f"badcfg-{uuid.uuid4().hex[:8]}"
        try:
            admin.create_topics([NewTopic(name, 1, 1, config=bad)])[name].result(30)
            fail(f"config {bad} was accepted")
        except Exception as e:
            if why not in str(e):
                fail(f"config {bad}: {e}")
    res = ConfigResource(ResourceType.TOPIC, cfg_topic)
    d = admin.describe_configs([res])[res].result(30)
    if len(d) != 33:
        fail(f"describe_configs lists {len(d)} keys, Kafka 4 has 33: {sorted(d)}")
    if d["compression.type"].value != "lz4" or d["delete.retention.ms"].value != "900":
        fail(f"overrides not described: {d['compression.type']}, {d['delete.retention.ms']}")
    if d["retention.ms"].source != 5 or d["compression.type"].source != 1:
        fail(f"sources: retention.ms {d['retention.ms'].source}, compression.type {d['compression.type'].source}")
    def incremental(op, value):
        e = ConfigEntry("cleanup.policy", value, incremental_operation=op)
        admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, cfg_topic, incremental_configs=[e])])[
            ConfigResource(ResourceType.TOPIC, cfg_topic)].result(30)
        return admin.describe_configs([res])[res].result(30)["cleanup.policy"].value
    if (v := incremental(AlterConfigOpType.APPEND, "compact")) != "delete,compact":
        fail(f"APPEND compact gave {v!r}")
    if (v := incremental(AlterConfigOpType.SUBTRACT, "delete")) != "compact":
        fail(f"SUBTRACT delete gave {v!r}")
    try:
        e = ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)
        admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, cfg_topic, incremental_configs=[e])])[
            ConfigResource(ResourceType.TOPIC, cfg_topic)].result(30)
        fail("APPEND to a non-list key was accepted")
    except Exception as e:
        if "not LIST" not in str(e):
            fail(f"APPEND to retention.ms: {e}")
    p2 = Producer({"bootstrap.servers": bs, "acks": "all", "compression.type": "none"})
    for i in range(20):
        p2.produce(cfg_topic, value=f"plain-{i}".encode() * 10, partition=0)
    p2.flush(30)  # the next one alone: a bad timestamp refuses its whole batch
    # A record an hour and a half in the future: message.timestamp.after.max.ms.
    errors = []
    p2.produce(cfg_topic, value=b"future", partition=0, timestamp=int(time.time() * 1000) + 5_400_000,
               on_delivery=lambda err, msg: errors.append(err))
    p2.flush(30)
    if not errors or errors[0] is None or "INVALID_TIMESTAMP" not in str(errors[0]).upper().replace(" ", "_"):
        fail(f"a record 90 min in the future: {errors}")
    c = Consumer({"bootstrap.servers": bs, "group.id": "cfg-check", "enable.auto.commit": False})
    c.assign([TopicPartition(cfg_topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    if got != [f"plain-{i}".encode() * 10 for i in range(20)]:
        fail(f"records of the lz4 topic came back as {got[:3]}...")
    print(f"configs ok: {cfg_topic}")

    # Dynamic broker configs: a read-only key is refused; a broker's
    # log.retention.ms reaches topics without an override (the cluster-wide
    # default, an empty broker name, cannot be sent by this client).
    broker = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("broker.id", "7", incremental_operation=AlterConfigOpType.SET)])
    try:
        admin.incremental_alter_configs([broker])[broker].result(30)
        fail("broker.id changed at run time")
    except Exception as e:
        if "dynamically" not in str(e):
            fail(f"broker.id: {e}")
    default = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("log.retention.ms", "123456", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([default])[default].result(30)
    d = admin.describe_configs([res])[res].result(30)["retention.ms"]
    if (d.value, d.source) != ("123456", 2):
        fail(f"retention.ms after a dynamic log.retention.ms: {d.value} source {d.source}")
    default = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("log.retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([default])[default].result(30)
    d = admin.describe_configs([res])[res].result(30)["retention.ms"]
    if (d.value, d.source) != ("604800000", 5):
        fail(f"retention.ms after deleting the dynamic config: {d.value} source {d.source}")
    print("confluent admin ok: topic configs, manual assignments, list_offsets (earliest, latest, by timestamp, max timestamp), authorized operations")


if __name__ == "__main__":
    main()
