/**
 * Runs tasks one after the other per key (a partition): a task starts when
 * the previous one of its key settled, whether it resolved or threw. Tasks
 * of different keys run side by side.
 */
export class SerialByKey<K> {
  private readonly tails = new Map<K, Promise<unknown>>();

  run<T>(key: K, fn: () => Promise<T> | T): Promise<T> {
    const run = (this.tails.get(key) ?? Promise.resolve()).then(fn, fn);
    this.tails.set(
      key,
      run.catch(() => undefined),
    );
    return run;
  }
}
