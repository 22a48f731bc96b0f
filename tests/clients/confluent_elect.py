"""ElectLeaders through confluent-kafka (librdkafka's admin API).

Usage: confluent_elect.py BOOTSTRAP preferred|unclean TOPIC:PARTITION...
Prints one line per partition answered: "TOPIC-PARTITION OK" or
"TOPIC-PARTITION <librdkafka error name>"; exits 1 if the request itself failed.
"""
import sys

try:
    from confluent_kafka import ElectionType, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient
except ImportError as e:
    sys.exit(f"confluent-kafka is not installed ({e}): run tests/run")


def main():
    bootstrap, kind, *tps = sys.argv[1:]
    election = {"preferred": ElectionType.PREFERRED, "unclean": ElectionType.UNCLEAN}[kind]
    partitions = []
    for tp in tps:
        topic, partition = tp.rsplit(":", 1)
        partitions.append(TopicPartition(topic, int(partition)))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        results = admin.elect_leaders(election, partitions or None).result(60)
    except KafkaException as e:
        sys.exit(f"elect_leaders failed: {e}")
    for tp, err in sorted(results.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        if err is None:
            status = "OK"
        else:
            # A KafkaError (or a KafkaException wrapping one): librdkafka's name.
            status = (err.args[0] if isinstance(err, KafkaException) else err).name()
        print(f"{tp.topic}-{tp.partition} {status}")


if __name__ == "__main__":
    main()
