import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SEARCH_ATTRIBUTES } from '../../src/common/constants';
import {
  checkTarget,
  connectProblem,
  missingSearchAttributes,
  TemporalConnectError,
  within,
  type TemporalServices,
} from '../../src/common/temporal-connect';

const t = { address: '127.0.0.1:9', namespace: 'peftgrid', tls: true };
const grpcError = (code: number, message: string) => Object.assign(new Error(message), { code });
const all = Object.fromEntries(Object.values(SEARCH_ATTRIBUTES).map((n) => [n, 2]));

function services(o: { ns?: Error; attrs?: Record<string, unknown> | Error }): TemporalServices {
  return {
    workflowService: { describeNamespace: async () => (o.ns ? Promise.reject(o.ns) : {}) },
    operatorService: {
      listSearchAttributes: async () =>
        o.attrs instanceof Error ? Promise.reject(o.attrs) : { customAttributes: o.attrs ?? all },
    },
  };
}

describe('Temporal connection problems', () => {
  it('tells a TLS handshake failure from an unreachable server, naming address and namespace', () => {
    const tls = connectProblem(
      grpcError(14, '14 UNAVAILABLE: No connection established. Last error: ssl handshake: certificate unknown'),
      t,
    );
    assert.equal(tls.problem, 'tls');
    assert.match(tls.message, /TLS handshake with Temporal at 127\.0\.0\.1:9 \(namespace peftgrid\) failed/);
    assert.match(tls.message, /TEMPORAL_TLS_CERT/);
    const down = connectProblem(grpcError(14, '14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:9'), t);
    assert.equal(down.problem, 'unreachable');
    assert.match(down.message, /cannot reach Temporal at 127\.0\.0\.1:9 \(namespace peftgrid\)/);
    assert.equal(connectProblem(grpcError(16, 'bad api key'), t).problem, 'auth');
  });

  it('a missing namespace names it and the command that creates it', async () => {
    const err = await checkTarget(
      services({ ns: grpcError(5, '5 NOT_FOUND: Namespace peftgrid is not found.') }),
      t,
    ).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof TemporalConnectError);
    assert.equal(err.problem, 'namespace');
    assert.match(err.message, /namespace "peftgrid" does not exist on Temporal at 127\.0\.0\.1:9/);
    assert.match(err.message, /temporal operator namespace create --namespace peftgrid/);
  });

  it('an unregistered search attribute names it and the command that registers it', async () => {
    const { [SEARCH_ATTRIBUTES.status]: _, ...three } = all;
    assert.deepEqual(missingSearchAttributes(three), [SEARCH_ATTRIBUTES.status]);
    const err = await checkTarget(services({ attrs: three }), t).then(
      () => null,
      (e: unknown) => e as TemporalConnectError,
    );
    assert.equal(err?.problem, 'search-attribute');
    assert.match(err!.message, /search attribute PeftgridStatus is not registered in namespace "peftgrid"/);
    assert.match(
      err!.message,
      /temporal operator search-attribute create --namespace peftgrid --address 127\.0\.0\.1:9 --name PeftgridStatus --type Keyword/,
    );
    await checkTarget(services({}), t); // all four: no error
    // A server whose operator API is closed to us (Temporal Cloud API key) skips the check.
    await checkTarget(services({ attrs: grpcError(7, 'PERMISSION_DENIED') }), t);
  });

  it('a server that never answers is an error after the bounded timeout, not a hang', async () => {
    const hang: TemporalServices = {
      workflowService: { describeNamespace: () => new Promise(() => undefined) },
      operatorService: { listSearchAttributes: () => new Promise(() => undefined) },
    };
    const t0 = Date.now();
    await assert.rejects(checkTarget(hang, t, 200), /did not answer within 0\.2 s/);
    assert.ok(Date.now() - t0 < 2000);
    await assert.rejects(
      within(new Promise(() => undefined), 50, () => new Error('late')),
      /late/,
    );
  });
});
