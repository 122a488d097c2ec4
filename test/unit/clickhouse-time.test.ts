import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';

const reference = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

test('clickhouseTime writes the same text as toISOString without T and Z, across the storable range and its edges', () => {
  const edges = [
    0, -1, 1, 86_399_999, 86_400_000, -86_400_000, -86_400_001,
    Date.UTC(1900, 0, 1), Date.UTC(1900, 0, 1) - 1, Date.UTC(2299, 11, 31, 23, 59, 59, 999),
    Date.UTC(2000, 1, 29, 12, 0, 0, 5), Date.UTC(2100, 1, 28, 23, 59, 59, 999), Date.UTC(2100, 2, 1), Date.UTC(1904, 1, 29),
    Date.UTC(1000, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999),
  ];
  for (const ms of edges) assert.equal(clickhouseTime(ms), reference(ms), `at ${ms}`);
  // Every day boundary and a random instant of every day from 1899 to 2301 (leap years, century rules).
  let seed = 42;
  const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  for (let day = Date.UTC(1899, 0, 1); day <= Date.UTC(2301, 0, 1); day += 86_400_000) {
    const inDay = day + Math.floor(random() * 86_400_000);
    assert.equal(clickhouseTime(day), reference(day));
    assert.equal(clickhouseTime(inDay), reference(inDay));
  }
});

test('clickhouseTime: outside years 1000-9999 and for fractional times it is the Date path', () => {
  assert.equal(clickhouseTime(Date.UTC(999, 11, 31)), reference(Date.UTC(999, 11, 31)));
  assert.equal(clickhouseTime(1.7), reference(1.7));
  assert.equal(clickhouseTime(-1.7), reference(-1.7));
  assert.throws(() => clickhouseTime(Number.NaN), RangeError);
});
