#!/usr/bin/env python3
"""Produce-then-consume load with a real client (confluent-kafka / librdkafka).

Prints MB/s and msg/s for each phase and publish latency (send -> delivery
report) percentiles from an HdrHistogram. Usage:
  load.py BOOTSTRAP [--messages N] [--size BYTES] [--partitions P] [--acks all|1]
"""
import argparse
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from hdrh.histogram import HdrHistogram


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--messages", type=int, default=500_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--acks", default="all")
    a = ap.parse_args()

    topic = f"perf-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    admin.create_topics([NewTopic(topic, a.partitions, 1)])[topic].result(30)

    hist = HdrHistogram(1, 60_000_000, 3)  # microseconds
    payload = b"x" * a.size
    p = Producer({
        "bootstrap.servers": a.bootstrap,
        "acks": a.acks,
        "linger.ms": 5,
        "batch.size": 1 << 20,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1 << 21,
    })
    errors = [0]

    def report(err, _msg, sent=None):
        if err is not None:
            errors[0] += 1
        else:
            hist.record_value(max(1, int((time.perf_counter() - sent) * 1e6)))

    start = time.perf_counter()
    for i in range(a.messages):
        sent = time.perf_counter()
        while True:
            try:
                p.produce(topic, payload, partition=i % a.partitions,
                          on_delivery=lambda e, m, s=sent: report(e, m, s))
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(120)
    produce_s = time.perf_counter() - start
    total = a.messages * a.size

    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "perf", "enable.auto.commit": False,
                  "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 8 << 20})
    c.assign([TopicPartition(topic, i, 0) for i in range(a.partitions)])
    got = 0
    start = time.perf_counter()
    deadline = start + 300
    while got < a.messages and time.perf_counter() < deadline:
        for m in c.consume(10_000, 1.0):
            if m.error() is None:
                got += 1
    consume_s = time.perf_counter() - start
    c.close()

    print(f"messages={a.messages} size={a.size}B partitions={a.partitions} acks={a.acks}")
    print(f"produce: {total / produce_s / 1e6:8.1f} MB/s {a.messages / produce_s:10.0f} msg/s errors={errors[0]}")
    print(f"consume: {got * a.size / consume_s / 1e6:8.1f} MB/s {got / consume_s:10.0f} msg/s consumed={got}")
    print("publish latency (us): " + " ".join(
        f"p{q}={hist.get_value_at_percentile(q)}" for q in (50, 99, 99.9)) + f" max={hist.get_max_value()}")
    admin.delete_topics([topic])


if __name__ == "__main__":
    main()
