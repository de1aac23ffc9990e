/**
 * Temporal connection settings (src/common/temporal-env.ts): the standard variables, peftgrid's
 * earlier TLS names, the temporal.toml profile and the defaults, in that order.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EnvError } from '../../src/common/env';
import { temporalSettings } from '../../src/common/temporal-env';

const dir = mkdtempSync(join(tmpdir(), 'peftgrid-tenv-'));
const pem = (name: string) => {
  const p = join(dir, name);
  writeFileSync(p, `-----BEGIN ${name}-----\n`);
  return p;
};
const [cert, key, ca, cert2] = ['cert', 'key', 'ca', 'cert2'].map(pem) as [string, string, string, string];
const toml = join(dir, 'temporal.toml');
writeFileSync(
  toml,
  `[profile.default]
address = "file-default:7233"
namespace = "ns-file"

[profile.cloud]
address = "cloud.example:7233"
namespace = "research.abc12"
api_key = "from-file"

[profile.cloud.grpc_meta]
x-team = "nlp"

[profile.mtls]
address = "mtls.example:7233"
[profile.mtls.tls]
client_cert_path = "${cert2}"
client_key_path = "${key}"
server_name = "temporal.internal"
`,
);
// A HOME with no temporal.toml, so a developer's own file never leaks into these cases.
const home = join(dir, 'home');
mkdirSync(home);
const base = { HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
/** What a PEM file written by pem() holds, and what a loaded one holds, as text. */
const buf = (p: string) => `-----BEGIN ${p.split('/').pop()}-----\n`;
const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);
const pair = (p: { crt: Uint8Array; key: Uint8Array } | undefined) => p && { crt: text(p.crt), key: text(p.key) };

describe('temporalSettings', () => {
  it('defaults: localhost:7233, namespace default, no TLS', () => {
    const s = temporalSettings(base);
    assert.equal(s.address, 'localhost:7233');
    assert.equal(s.namespace, 'default');
    assert.equal(s.tls, undefined);
    assert.equal(s.apiKey, undefined);
    assert.equal(s.profile, 'default');
  });

  it('reads the default profile of TEMPORAL_CONFIG_FILE, and the standard variables win over it', () => {
    const fromFile = temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml });
    assert.equal(fromFile.address, 'file-default:7233');
    assert.equal(fromFile.namespace, 'ns-file');
    const env = temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_ADDRESS: 'env:7233' });
    assert.equal(env.address, 'env:7233');
    assert.equal(env.namespace, 'ns-file', 'unset variables still come from the file');
  });

  it('finds temporal.toml in the XDG config dir when TEMPORAL_CONFIG_FILE is unset', () => {
    const xdg = join(dir, 'xdg');
    mkdirSync(join(xdg, 'temporalio'), { recursive: true });
    writeFileSync(join(xdg, 'temporalio', 'temporal.toml'), '[profile.default]\naddress = "xdg:7233"\n');
    assert.equal(temporalSettings({ HOME: home, XDG_CONFIG_HOME: xdg }).address, 'xdg:7233');
  });

  it('TEMPORAL_PROFILE picks a profile: API key (TLS on), gRPC metadata', () => {
    const s = temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud' });
    assert.equal(s.address, 'cloud.example:7233');
    assert.equal(s.namespace, 'research.abc12');
    assert.equal(s.apiKey, 'from-file');
    assert.equal(s.tls, true);
    assert.deepEqual(s.metadata, { 'x-team': 'nlp' });
    assert.equal(s.profile, 'cloud');
    const env = temporalSettings({
      ...base,
      TEMPORAL_CONFIG_FILE: toml,
      TEMPORAL_PROFILE: 'cloud',
      TEMPORAL_API_KEY: 'from-env',
    });
    assert.equal(env.apiKey, 'from-env');
  });

  it('a profile with mTLS files; TEMPORAL_TLS_CLIENT_CERT_PATH overrides its cert', () => {
    const s = temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'mtls' });
    assert.ok(s.tls && typeof s.tls === 'object');
    assert.deepEqual(pair(s.tls.clientCertPair), { crt: buf(cert2), key: buf(key) });
    assert.equal(s.tls.serverNameOverride, 'temporal.internal');
    const o = temporalSettings({
      ...base,
      TEMPORAL_CONFIG_FILE: toml,
      TEMPORAL_PROFILE: 'mtls',
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
    });
    assert.ok(o.tls && typeof o.tls === 'object');
    assert.equal(text(o.tls.clientCertPair?.crt), buf(cert));
  });

  it('the standard TEMPORAL_TLS_* names', () => {
    const s = temporalSettings({
      ...base,
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'srv',
    });
    assert.ok(s.tls && typeof s.tls === 'object');
    assert.deepEqual(pair(s.tls.clientCertPair), { crt: buf(cert), key: buf(key) });
    assert.equal(text(s.tls.serverRootCACertificate), buf(ca));
    assert.equal(s.tls.serverNameOverride, 'srv');
    assert.equal(temporalSettings({ ...base, TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' }).tls, false);
  });

  it("peftgrid's earlier TLS names keep working, and the standard names win over them", () => {
    const old = temporalSettings({ ...base, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_CA: ca });
    assert.ok(old.tls && typeof old.tls === 'object');
    assert.deepEqual(pair(old.tls.clientCertPair), { crt: buf(cert), key: buf(key) });
    assert.equal(text(old.tls.serverRootCACertificate), buf(ca));
    const both = temporalSettings({
      ...base,
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_KEY: key,
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert2,
    });
    assert.ok(both.tls && typeof both.tls === 'object');
    assert.equal(text(both.tls.clientCertPair?.crt), buf(cert2));
    // And the earlier names beat the file's profile, as every variable does.
    const overFile = temporalSettings({
      ...base,
      TEMPORAL_CONFIG_FILE: toml,
      TEMPORAL_PROFILE: 'mtls',
      TEMPORAL_TLS_CERT: cert,
    });
    assert.ok(overFile.tls && typeof overFile.tls === 'object');
    assert.equal(text(overFile.tls.clientCertPair?.crt), buf(cert));
  });

  it('empty variables count as unset', () => {
    const s = temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_ADDRESS: '', TEMPORAL_TLS_CERT: '' });
    assert.equal(s.address, 'file-default:7233');
    assert.equal(s.tls, undefined);
  });

  it('a missing config file or an unknown profile is an error naming the variable', () => {
    assert.throws(
      () => temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: join(dir, 'nope.toml') }),
      (e: unknown) => e instanceof EnvError && /TEMPORAL_CONFIG_FILE/.test(e.message) && /nope\.toml/.test(e.message),
    );
    assert.throws(
      () => temporalSettings({ ...base, TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' }),
      (e: unknown) => e instanceof EnvError && /profile "staging"/.test(e.message) && /not found/.test(e.message),
    );
  });
});
