/**
 * A string that holds only its own characters. A key or value sliced out of
 * a field's text can keep the whole text alive in V8 (with its cleartext
 * PII) for as long as a cache keeps the slice.
 */
export function ownCopy(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/**
 * `compute` remembered for short keys (payload keys repeat: the same few
 * dozen names in every event), up to `limit` of them (cleared when full).
 * Keys are cached as copies ({@link ownCopy}); longer ones are not cached.
 */
export function memoizeShortKeys<T>(compute: (key: string) => T, maxKeyLength = 64, limit = 10_000): (key: string) => T {
  const cache = new Map<string, T>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = compute(key);
      if (key.length <= maxKeyLength) {
        if (cache.size >= limit) cache.clear();
        cache.set(ownCopy(key), value);
      }
    }
    return value;
  };
}
