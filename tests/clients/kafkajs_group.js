#!/usr/bin/env node
// kafkajs group consumers against sluice.
//
// Usage: node kafkajs_group.js HOST:PORT
// Two consumers join one group on a 3-partition topic; once both are in the
// same generation and split the partitions, 3000 records are produced and must
// be consumed exactly once across the two. admin.describeGroups must show the
// group Stable with 2 members meanwhile; after both disconnect (committing),
// admin.fetchOffsets must show the log end. Last line:
// COMMITTED group topic p:o,...   Exits non-zero with a message on mismatch.
'use strict';

let kafkajs;
try {
  kafkajs = require('kafkajs');
} catch (e) {
  console.error(`kafkajs is not installed (${e.message}): run tests/run`);
  process.exit(1);
}
const { Kafka, logLevel } = kafkajs;
const crypto = require('crypto');

const PARTITIONS = 3;
const RECORDS = 3000;

function fail(msg) {
  console.error(`kafkajs group check FAILED: ${msg}`);
  process.exit(1);
}

async function waitFor(what, cond, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const bs = process.argv[2];
  if (!bs) fail('usage: node kafkajs_group.js HOST:PORT');
  const topic = `kjs-group-${crypto.randomBytes(4).toString('hex')}`;
  const groupId = `${topic}-g`;
  const kafka = new Kafka({ clientId: 'kafkajs-group', brokers: [bs], logLevel: logLevel.WARN,
    connectionTimeout: 10000, requestTimeout: 30000, retry: { retries: 5 } });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });

  const seen = []; // [consumer, partition, offset, value]
  const joins = [null, null]; // latest GROUP_JOIN payload per consumer
  const consumers = [];
  for (let i = 0; i < 2; i++) {
    const c = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 10000,
      maxWaitTimeInMs: 200 });
    c.on(c.events.GROUP_JOIN, (e) => { joins[i] = e.payload; });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({ eachMessage: async ({ partition, message }) => {
      seen.push([i, partition, Number(message.offset), message.value.toString()]);
    } });
    consumers.push(c);
  }
  const parts = (j) => (j && j.memberAssignment[topic]) || [];
  await waitFor('both consumers in one generation, splitting the partitions', () => joins.every((j) => j)
    && joins[0].groupId === joins[1].groupId && joins[0].memberId !== joins[1].memberId
    && [...parts(joins[0]), ...parts(joins[1])].sort().join() === [...Array(PARTITIONS).keys()].join()
    && parts(joins[0]).length > 0 && parts(joins[1]).length > 0);
  const { groups } = await admin.describeGroups([groupId]);
  const g = groups[0];
  if (g.errorCode !== 0 || g.state !== 'Stable' || g.members.length !== 2 || g.protocol !== 'RoundRobinAssigner') {
    fail(`describeGroups while consuming: ${JSON.stringify({ ...g, members: g.members.length })}`);
  }

  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = 0; i < RECORDS; i++) messages.push({ value: `v-${i}`, partition: i % PARTITIONS });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  await waitFor(`${RECORDS} records`, () => seen.length >= RECORDS);
  await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive now
  const values = new Set(seen.map((s) => s[3]));
  if (seen.length !== RECORDS || values.size !== RECORDS) {
    fail(`${seen.length} records consumed, ${values.size} distinct: not exactly once`);
  }
  const owners = {};
  for (const [i, p] of seen) (owners[p] = owners[p] || new Set()).add(i);
  if (Object.values(owners).some((o) => o.size !== 1)) fail('a partition was consumed by both members');
  for (const c of consumers) await c.disconnect();

  const after = (await admin.describeGroups([groupId])).groups[0];
  if (after.state !== 'Empty' || after.members.length !== 0) fail(`after disconnect: state ${after.state}`);
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const committed = offsets[0].partitions.map((p) => [p.partition, Number(p.offset)]).sort((a, b) => a[0] - b[0]);
  for (const [p, o] of committed) {
    if (o !== RECORDS / PARTITIONS) fail(`partition ${p}: committed ${o}, expected ${RECORDS / PARTITIONS}`);
  }
  await admin.disconnect();
  console.log(`kafkajs group OK: ${RECORDS} records once across 2 members`);
  console.log(`COMMITTED ${groupId} ${topic} ${committed.map(([p, o]) => `${p}:${o}`).join(',')}`);
}

main().catch((e) => fail(e.stack || String(e)));
