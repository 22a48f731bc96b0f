#!/usr/bin/env python3
"""confluent-kafka (Python over its bundled librdkafka) against sluice.

Usage: confluent_check.py HOST:PORT
Admin create (3 partitions), keyed + unkeyed idempotent acks=all produce (plain and lz4),
consume with Consumer.assign from OFFSET_BEGINNING (group.id is required by
librdkafka but no group is joined and nothing is committed), verify counts and
per-partition order, list and delete the topic. Exits non-zero on mismatch.
"""
import sys
import time
import uuid

try:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    sys.exit(f"confluent-kafka is not installed ({e}): run tests/run")

PARTITIONS = 3
RECORDS = 3000


def fail(msg):
    print(f"confluent-kafka check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def wait_until(what, cond, timeout=30):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def produce(bs, topic, compression, start):
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset(), int(msg.value().split(b"-")[1]), msg.key(), msg.value()))

    producer = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 5,
                         "enable.idempotence": True,
                         "compression.type": compression, "message.timeout.ms": 30000})
    for i in range(start, start + RECORDS):
        kwargs = {"key": f"key-{i % 17}".encode()} if i % 2 == 0 else {"partition": i % PARTITIONS}
        value = f"{'keyed' if i % 2 == 0 else 'unkeyed'}-{i}".encode()
        while True:
            try:
                producer.produce(topic, value=value, on_delivery=on_delivery, **kwargs)
                break
            except BufferError:  # local queue full: serve delivery reports
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60) != 0:
        fail("flush timed out")
    if errors:
        fail(f"{len(errors)} delivery errors, first: {errors[0]}")
    return acked


def main():
    bs = sys.argv[1]
    topic = f"confluent-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bs})
    for f in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                                 operation_timeout=30).values():
        f.result(timeout=60)  # raises KafkaException on failure
    wait_until("topic in metadata", lambda: topic in admin.list_topics(timeout=10).topics)
    md = admin.list_topics(topic=topic, timeout=10).topics[topic]
    if md.error is not None or len(md.partitions) != PARTITIONS:
        fail(f"metadata for {topic}: error={md.error}, partitions={list(md.partitions)}")

    acked = produce(bs, topic, "none", 0) + produce(bs, topic, "lz4", RECORDS)
    if len(acked) != 2 * RECORDS:
        fail(f"{len(acked)} delivery reports for {2 * RECORDS} records")
    expected = {p: sorted(a for a in acked if a[0] == p) for p in range(PARTITIONS)}
    for p, recs in expected.items():
        if [r[1] for r in recs] != list(range(len(recs))):
            fail(f"partition {p}: acknowledged offsets are not 0..{len(recs) - 1}")
        if [r[2] for r in recs] != sorted(r[2] for r in recs):
            fail(f"partition {p}: offsets do not follow send order")

    consumer = Consumer({"bootstrap.servers": bs, "group.id": "sluice-unused", "enable.auto.commit": False,
                         "enable.auto.offset.store": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    for p in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if (low, high) != (0, len(expected[p])):
            fail(f"partition {p}: watermarks {(low, high)}, expected (0, {len(expected[p])})")
    got = {p: [] for p in range(PARTITIONS)}
    deadline = time.time() + 60
    while any(len(got[p]) < len(expected[p]) for p in got):
        if time.time() > deadline:
            fail(f"consume timed out with {[len(v) for v in got.values()]} records")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            fail(f"consume error: {msg.error()}")
        got[msg.partition()].append((msg.offset(), msg.key(), msg.value()))
    consumer.close()
    for p in range(PARTITIONS):
        if got[p] != [(o, k, v) for (_, o, _, k, v) in expected[p]]:
            fail(f"partition {p}: consumed records differ from acknowledged ones")

    for f in admin.delete_topics([topic], operation_timeout=30).values():
        f.result(timeout=60)
    wait_until("topic to disappear", lambda: topic not in admin.list_topics(timeout=10).topics)
    print(f"confluent-kafka OK: {len(acked)} records over {PARTITIONS} partitions")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: confluent_check.py HOST:PORT")
    main()
