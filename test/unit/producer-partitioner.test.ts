import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import kafkajs, { type PartitionMetadata } from 'kafkajs';
import { murmur2, Murmur2Partitioner } from '../../core/clients/partitioner.js';

const { Partitioners } = kafkajs;

test("murmur2 matches the Java client's Utils.murmur2 test vectors", () => {
  // From Kafka's UtilsTest.testMurmur2.
  const vectors: [string | number[], number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    [[0x61, 0x62, 0x63], 479470107],
  ];
  for (const [input, hash] of vectors) assert.equal(murmur2(Buffer.from(input as string)), hash, String(input));
});

test("the partitioner picks kafkajs' default partition for every key (an execution stays where any client would put it)", () => {
  const theirs = Partitioners.DefaultPartitioner();
  const ours = Murmur2Partitioner();
  for (const partitions of [1, 3, 6, 7, 50]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 1 }) as PartitionMetadata);
    for (let i = 0; i < 2_000; i++) {
      // Execution ids, and keys of every length mod 4 with high bytes (sign bits in the 32-bit arithmetic).
      const key = i % 2 === 0 ? Buffer.from(randomUUID()) : randomBytes(i % 41);
      const message = { key, value: null };
      assert.equal(ours({ topic: 't', partitionMetadata, message }), theirs({ topic: 't', partitionMetadata, message }), `key ${key.toString('hex')}, ${partitions} partitions`);
    }
    const message = { key: 'a string key', value: null };
    assert.equal(ours({ topic: 't', partitionMetadata, message }), theirs({ topic: 't', partitionMetadata, message }));
    assert.equal(ours({ topic: 't', partitionMetadata, message: { key: Buffer.from('k'), value: null, partition: 0 } }), 0, 'an explicit partition wins');
  }
});
