import type pg from 'pg';
import type { Db, Statement } from './db.js';

/** Statements of one coalesced read in flight at once. */
const maxInFlight = 2;
/** Reads per statement. */
const maxBatch = 256;

interface Waiting<A extends unknown[], R> {
  args: A;
  resolve(rows: R[]): void;
  reject(err: unknown): void;
}

/**
 * A read coalesced with the same read of other callers: reads that arrive while earlier ones are in
 * flight go out together in one statement, and a read on an idle store goes out at once. (A platform that
 * starts many releases at once otherwise sends the same lookup, for each environment, one round trip
 * each.)
 *
 * The statement takes one array parameter per argument (`$1::text[]`, …), unnests them `WITH ORDINALITY`
 * and returns each row with `k`, the 1-based position of the read it answers, ordered by `k` and then by
 * the read's own order. Each caller gets exactly the rows of its own read, in that order.
 */
export function coalescedRead<A extends unknown[], R extends pg.QueryResultRow>(
  db: Db,
  statement: Statement,
  /** What the statement does, for errors: given the arguments of every read it answers. */
  what: (reads: A[]) => string,
): (...args: A) => Promise<R[]> {
  const queue: Array<Waiting<A, R>> = [];
  let inFlight = 0;

  function pump(): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, maxBatch);
      inFlight++;
      void send(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  async function send(batch: Array<Waiting<A, R>>): Promise<void> {
    const width = batch[0]!.args.length;
    const columns = Array.from({ length: width }, (_, i) => batch.map((w) => w.args[i] ?? null));
    let rows: Array<R & { k: string | number }>;
    try {
      rows = await db.query<R & { k: string | number }>(what(batch.map((w) => w.args)), statement, columns);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    const answers: R[][] = batch.map(() => []);
    for (const row of rows) {
      const { k, ...rest } = row;
      answers[Number(k) - 1]?.push(rest as unknown as R);
    }
    for (const [i, w] of batch.entries()) w.resolve(answers[i]!);
  }

  return (...args: A) =>
    new Promise<R[]>((resolve, reject) => {
      queue.push({ args, resolve, reject });
      pump();
    });
}
