/**
 * chDB is optional (the default container image leaves it out): without it, embedded mode stops the start with one
 * line naming what to change, and a ClickHouse server needs no chDB at all.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type ClientModule = typeof import('./client');

/** lib/store/client.ts loaded with `chdb/connection` resolving as `chdb` would when it is not installed. */
function clientWithout(error: Error & { code?: string }): ClientModule {
  let mod: ClientModule | undefined;
  jest.isolateModules(() => {
    jest.doMock('chdb/connection', () => {
      throw error;
    });
    mod = jest.requireActual<ClientModule>('./client');
  });
  return mod as ClientModule;
}

const notFound = (name: string): Error & { code: string } => Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- lib/store/client.ts`), { code: 'MODULE_NOT_FOUND' });

describe('connect() without the optional chdb package', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshlens-nochdb-'));
  });
  afterEach(() => {
    jest.dontMock('chdb/connection');
    rmSync(dir, { recursive: true, force: true });
  });

  it('embedded mode stops with one line naming MESHLENS_CLICKHOUSE_URL and chdb', () => {
    const { connect, CHDB_MISSING } = clientWithout(notFound('chdb/connection'));
    let error: unknown;
    try {
      connect({ clickhouseUrl: undefined, dataDir: dir });
    } catch (e) {
      error = e;
    }
    // A StartError (from the isolated module registry, so compared by name): the CLI prints its message as it is.
    expect((error as Error).name).toBe('StartError');
    expect((error as Error).message).toBe(CHDB_MISSING);
    expect(CHDB_MISSING).not.toContain('\n');
    expect(CHDB_MISSING).toMatch(/optional chdb package.*MESHLENS_CLICKHOUSE_URL.*install chdb/);
  });

  it('a ClickHouse server needs no chdb: connect() never loads it', async () => {
    const { connect } = clientWithout(notFound('chdb/connection'));
    const conn = connect({ clickhouseUrl: 'http://user:pw@127.0.0.1:1/meshlens', dataDir: dir });
    expect(conn.kind).toBe('server');
    await conn.client.close();
  });

  it('a chdb that is installed but broken is not reported as missing', () => {
    // A module chdb itself requires (its native library) is missing: that error is chdb's own, passed on as it is.
    const { connect } = clientWithout(notFound('@chdb/lib-linux-x64-gnu'));
    expect(() => connect({ clickhouseUrl: undefined, dataDir: dir })).toThrow(/Cannot find module '@chdb\/lib-linux-x64-gnu'/);
  });
});
