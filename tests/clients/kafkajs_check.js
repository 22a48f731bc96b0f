#!/usr/bin/env node
// kafkajs (pure JavaScript protocol implementation) against sluice.
//
// Usage: node kafkajs_check.js HOST:PORT
// Admin create/list/describe (3 partitions), keyed + unkeyed idempotent acks=all produce
// (plain and gzip), offsets via admin.fetchTopicOffsets, delete the topic.
// Exits non-zero with a message on any mismatch.
//
// Not covered yet: consuming. kafkajs only has group consumers (JoinGroup /
// SyncGroup / OffsetCommit), and sluice has no group coordinator yet. Once it
// does, add a kafka.consumer({ groupId }) that reads everything back here.
'use strict';

let kafkajs;
try {
  kafkajs = require('kafkajs');
} catch (e) {
  console.error(`kafkajs is not installed (${e.message}): run tests/run`);
  process.exit(1);
}
const { Kafka, logLevel, CompressionTypes, Partitioners } = kafkajs;
const crypto = require('crypto');

const PARTITIONS = 3;
const RECORDS = 3000;
const BATCH = 250; // records per send(): one acks=all round trip

function fail(msg) {
  console.error(`kafkajs check FAILED: ${msg}`);
  process.exit(1);
}

async function main() {
  const bs = process.argv[2];
  if (!bs) fail('usage: node kafkajs_check.js HOST:PORT');
  const topic = `kafkajs-${crypto.randomBytes(4).toString('hex')}`;
  const kafka = new Kafka({ clientId: 'kafkajs-check', brokers: bs.split(','), logLevel: logLevel.WARN,
    connectionTimeout: 10000, requestTimeout: 30000, retry: { retries: 3 } });

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true, timeout: 30000 });
  if (created !== true) fail('createTopics returned false (topic already existed?)');
  if (!(await admin.listTopics()).includes(topic)) fail('listTopics does not include the new topic');
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  if (md.topics.length !== 1 || md.topics[0].partitions.length !== PARTITIONS) {
    fail(`fetchTopicMetadata: ${JSON.stringify(md)}`);
  }

  // The idempotent producer (InitProducerId, sequence numbers; kafkajs wants
  // one request in flight for it).
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // Send batch by batch and check each partition's base offset continues
  // exactly where the previous batch ended.
  const next = {};
  for (let p = 0; p < PARTITIONS; p++) next[p] = 0;
  let sent = 0;
  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    for (let b = 0; b < RECORDS; b += BATCH) {
      const messages = [];
      for (let i = b; i < b + BATCH; i++) {
        messages.push(i % 2 === 0
          ? { key: `key-${i % 17}`, value: `keyed-${i}` }
          : { value: `unkeyed-${i}`, partition: i % PARTITIONS });
      }
      const results = await producer.send({ topic, acks: -1, compression, messages });
      for (const r of results) {
        if (r.errorCode !== 0) fail(`produce to partition ${r.partition}: error ${r.errorCode}`);
        if (String(r.baseOffset) !== String(next[r.partition])) {
          fail(`partition ${r.partition}: base offset ${r.baseOffset}, expected ${next[r.partition]}`);
        }
      }
      sent += messages.length;
      // The response carries base offsets only; read the new ends back.
      for (const o of await admin.fetchTopicOffsets(topic)) next[o.partition] = Number(o.high);
      const total = Object.values(next).reduce((a, c) => a + c, 0);
      if (total !== sent) fail(`high watermarks sum to ${total} after ${sent} acknowledged records`);
    }
  }
  await producer.disconnect();

  for (const o of await admin.fetchTopicOffsets(topic)) {
    if (o.low !== '0') fail(`partition ${o.partition}: low watermark ${o.low}`);
    if (Number(o.high) === 0) fail(`partition ${o.partition} got no records`);
  }

  await admin.deleteTopics({ topics: [topic], timeout: 30000 });
  const deadline = Date.now() + 30000;
  while ((await admin.listTopics()).includes(topic)) {
    if (Date.now() > deadline) fail('deleted topic still listed');
    await new Promise((r) => setTimeout(r, 200));
  }
  await admin.disconnect();
  console.log(`kafkajs OK: ${sent} records over ${PARTITIONS} partitions`);
}

main().catch((e) => fail(e.stack || String(e)));
