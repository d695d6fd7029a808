import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Child, killChildren, startChild } from './helpers/children.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

// Two engine processes on one database race for environments; exactly one takes each.
let server: TestPostgres;
let url: string;
let dir: string;
beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase('races');
  dir = await fs.mkdtemp(join(tmpdir(), 'cg-pg-races-'));
});
afterEach(() => killChildren());
afterAll(async () => {
  killChildren();
  await server?.destroy();
  await fs.rm(dir, { recursive: true, force: true });
});

function engineChild(host: string): Child {
  return startChild('engine-child.mjs', {
    CG_PG_URL: url,
    CG_PG_SCHEMA: 'races',
    CG_LEASE_MS: '5000',
    CG_TARGET_DIR: dir,
    CG_HOST: host,
  });
}

describe('two engine processes racing for one environment', () => {
  it('exactly one of them wins each of 100 races, and the winner’s release completes', async () => {
    const a = engineChild('host-a');
    const b = engineChild('host-b');
    await Promise.all([a.next((l) => l.event === 'ready'), b.next((l) => l.event === 'ready')]);
    const wins = { a: 0, b: 0 };
    for (let i = 0; i < 100; i++) {
      const environment = `race-${i}`;
      const id = `r${i}`;
      const message = { cmd: 'release', id, environment, version: 'v1', hold: true };
      // Both are told in the same tick; the winner holds at its first target call until both have answered.
      a.send(message);
      b.send(message);
      const said = await Promise.all(
        [a, b].map((c) => c.next((l) => l.id === id && (l.event === 'holding' || l.event === 'result'))),
      );
      const holding = said.filter((l) => l.event === 'holding');
      const refused = said.filter((l) => l.event === 'result' && l.code === 'CG_ENVIRONMENT_LOCKED');
      expect(holding, `race ${i}: ${JSON.stringify(said)}`).toHaveLength(1);
      expect(refused, `race ${i}: ${JSON.stringify(said)}`).toHaveLength(1);
      const winner = said[0]!.event === 'holding' ? a : b;
      wins[winner === a ? 'a' : 'b']++;
      winner.send({ cmd: 'continue', id });
      const done = await winner.next((l) => l.id === id && l.event === 'result');
      expect(done).toMatchObject({ status: 'succeeded', serving: 'v1' });
    }
    // Both processes won some: the races were real races, not one process always first.
    expect(wins.a + wins.b).toBe(100);
    expect(Math.min(wins.a, wins.b), JSON.stringify(wins)).toBeGreaterThan(0);

    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const runs = await db.query<{ environment: string; n: string }>(
        `SELECT environment, count(*) AS n FROM races.runs GROUP BY environment`,
      );
      expect(runs.rows).toHaveLength(100);
      expect(runs.rows.every((r) => Number(r.n) === 1)).toBe(true);
      const history = await db.query<{ n: string }>('SELECT count(*) AS n FROM races.history');
      expect(Number(history.rows[0]!.n)).toBe(100);
    } finally {
      await db.end();
    }
    a.send({ cmd: 'exit' });
    b.send({ cmd: 'exit' });
    await Promise.all([a.exited, b.exited]);
  });
});
