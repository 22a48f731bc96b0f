#!/usr/bin/env python3
"""confluent-kafka consumer with fetch.max.bytes far below
max.partition.fetch.bytes reads a topic of several MB to the end.

Usage: confluent_fetch_limits.py HOST:PORT
A broker that answers a fetch with more than fetch.max.bytes (beyond one
first batch) makes librdkafka drop the connection ("Invalid response size")
and retry forever: this script then times out and fails.
"""
import sys
import time
import uuid

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    sys.exit(f"confluent-kafka is not installed ({e}): run tests/run")

RECORDS = 40
SIZE = 100_000


def fail(msg):
    print(f"confluent fetch-limits check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    bs = sys.argv[1]
    topic = f"confluent-fetch-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 50})
    for i in range(RECORDS):
        while True:
            try:
                producer.produce(topic, value=f"{i:02}".encode() + b"x" * SIZE, partition=0)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60) != 0:
        fail("flush timed out")
    consumer = Consumer({
        "bootstrap.servers": bs,
        "group.id": "fetch-limits",
        "enable.auto.commit": False,
        "fetch.max.bytes": 1_000_000,
        "max.partition.fetch.bytes": 20_000_000,
        "receive.message.max.bytes": 1_000_512,
    })
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 60
    while len(got) < RECORDS:
        if time.time() > deadline:
            fail(f"timed out after {len(got)} of {RECORDS} records")
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail(f"consume error: {m.error()}")
        got.append(m.value())
    consumer.close()
    for i, v in enumerate(got):
        if not v.startswith(f"{i:02}".encode()) or len(v) != SIZE + 2:
            fail(f"record {i} is not what was produced")
    print(f"confluent fetch limits ok: {RECORDS} records of {SIZE} bytes through fetch.max.bytes=1000000")


if __name__ == "__main__":
    main()
