/**
 * A local stand-in for the Hugging Face hub (HF_ENDPOINT points at it): enough of its API for
 * `huggingface_hub.snapshot_download` and `peftgrid validate`'s existence check, read off
 * huggingface_hub 0.36 (hf_api.py `model_info`, file_download.py `get_hf_file_metadata`/`http_get`,
 * utils/_http.py `hf_raise_for_status`):
 *   GET /api/models/{repo}[/revision/{rev}] → {id, sha, siblings: [{rfilename, size}]}
 *   HEAD|GET /{repo}/resolve/{rev}/{file}   → X-Repo-Commit, ETag (the sha256), Content-Length; Range on GET
 *   the same under /api/datasets/{repo} and /datasets/{repo}/resolve/ for repos of `type: 'dataset'`
 * Errors carry the hub's X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), which
 * huggingface_hub maps onto its typed errors. Gated repos need `Authorization: Bearer <token>`: none is a
 * 401, another token a 403, as on the hub. `gets` counts file GETs per `repo/file` (tests assert one fetch).
 *
 * Run directly (`node --import tsx test/helpers/hub-server.ts '<json HubRepos>'`) it prints its endpoint
 * as one JSON line and serves until killed: the Python tests use it that way, and so does the e2e
 * test, whose spawnSync calls would block an in-process server (`GET /_test/gets` returns `gets`).
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';

export interface HubRepo {
  /** Revision name (branch or tag) → the model directory it serves. The first is `main` unless named. */
  revisions: Record<string, string>;
  /** Needs the server's token. */
  gated?: boolean;
  /** A dataset repo: served under /api/datasets/ and /datasets/<repo>/resolve/, as the hub does. */
  type?: 'dataset';
}
export type HubRepos = Record<string, HubRepo>;

export interface HubServer {
  endpoint: string;
  token: string;
  /** File GETs per `repo/file`, HEADs not counted. */
  gets: Map<string, number>;
  /** The commit sha a revision name resolves to. */
  sha(repo: string, revision?: string): string;
  stop(): Promise<void>;
}

interface Rev {
  sha: string;
  dir: string;
  files: Array<{ name: string; size: number; sha256: string }>;
}

function listFiles(dir: string): Rev['files'] {
  const out: Rev['files'] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue; // markers, caches
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        out.push({
          name: relative(dir, p),
          size: statSync(p).size,
          sha256: createHash('sha256').update(readFileSync(p)).digest('hex'),
        });
    }
  };
  walk(dir);
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export async function startHubServer(repos: HubRepos, opts: { token?: string } = {}): Promise<HubServer> {
  const token = opts.token ?? 'hf_test_token';
  const table = new Map<string, Map<string, Rev>>();
  for (const [id, repo] of Object.entries(repos)) {
    const revs = new Map<string, Rev>();
    for (const [name, dir] of Object.entries(repo.revisions)) {
      const files = listFiles(dir);
      const sha = createHash('sha1')
        .update(JSON.stringify([id, name, files]))
        .digest('hex');
      const rev = { sha, dir, files };
      revs.set(name, rev);
      revs.set(sha, rev); // a commit sha resolves to itself
    }
    if (!revs.has('main')) revs.set('main', revs.get(Object.keys(repo.revisions)[0] as string) as Rev);
    // The hub's file URLs of a dataset repo start with /datasets/: keyed so, /resolve/ needs no special case.
    table.set(repo.type === 'dataset' ? `datasets/${id}` : id, revs);
  }
  const gets = new Map<string, number>();

  const fail = (res: ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, { 'X-Error-Code': code, 'X-Error-Message': message, 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: message }));
  };
  /** The revision, or why not (already answered). */
  const resolveRev = (req: IncomingMessage, res: ServerResponse, repo: string, rev: string): Rev | null => {
    const revs = table.get(repo);
    if (!revs) {
      fail(res, 404, 'RepoNotFound', `Repository not found: ${repo}`);
      return null;
    }
    if (repos[repo]?.gated) {
      const auth = req.headers.authorization;
      if (!auth) {
        fail(res, 401, 'GatedRepo', `Access to model ${repo} is restricted. You must be authenticated.`);
        return null;
      }
      if (auth !== `Bearer ${token}`) {
        fail(res, 403, 'GatedRepo', `Access to model ${repo} is restricted and you are not in the authorized list.`);
        return null;
      }
    }
    const r = revs.get(decodeURIComponent(rev));
    if (!r) fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    return r ?? null;
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = url.pathname;
    if (path === '/_test/gets') {
      // For a test that runs this server as a child process (and blocks on spawnSync meanwhile).
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(Object.fromEntries(gets)));
      return;
    }
    const api = /^\/api\/(models|datasets)\//.exec(path);
    if (api) {
      const rest = path.slice(api[0].length);
      const at = rest.indexOf('/revision/');
      const repo = at >= 0 ? rest.slice(0, at) : rest;
      const key = api[1] === 'datasets' ? `datasets/${repo}` : repo;
      const rev = resolveRev(req, res, key, at >= 0 ? rest.slice(at + '/revision/'.length) : 'main');
      if (!rev) return;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          id: repo,
          modelId: repo,
          sha: rev.sha,
          private: false,
          gated: repos[repo]?.gated ? 'manual' : false,
          siblings: rev.files.map((f) => ({ rfilename: f.name, size: f.size, blobId: f.sha256.slice(0, 40) })),
        }),
      );
      return;
    }
    const at = path.indexOf('/resolve/');
    if (at < 0 || (req.method !== 'GET' && req.method !== 'HEAD')) return fail(res, 404, 'EntryNotFound', path);
    const repo = decodeURIComponent(path.slice(1, at));
    const [revName = '', ...fileParts] = path.slice(at + '/resolve/'.length).split('/');
    const rev = resolveRev(req, res, repo, revName);
    if (!rev) return;
    const name = fileParts.map(decodeURIComponent).join('/');
    const file = rev.files.find((f) => f.name === name);
    if (!file) return fail(res, 404, 'EntryNotFound', `${name} not found in ${repo}@${revName}`);
    const headers = { 'X-Repo-Commit': rev.sha, ETag: `"${file.sha256}"`, 'Accept-Ranges': 'bytes' };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'Content-Length': String(file.size) });
      return res.end();
    }
    gets.set(`${repo}/${name}`, (gets.get(`${repo}/${name}`) ?? 0) + 1);
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (start > 0 && start < file.size) {
      res.writeHead(206, {
        ...headers,
        'Content-Length': String(file.size - start),
        'Content-Range': `bytes ${start}-${file.size - 1}/${file.size}`,
      });
    } else res.writeHead(200, { ...headers, 'Content-Length': String(file.size) });
    createReadStream(join(rev.dir, name), { start: start < file.size ? start : 0 }).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    token,
    gets,
    sha: (repo, revision = 'main') => {
      const r = table.get(repo)?.get(revision);
      if (!r) throw new Error(`hub server: no ${repo}@${revision}`);
      return r.sha;
    },
    stop: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

if (process.argv[1] && /hub-server\.ts$/.test(process.argv[1])) {
  const repos = JSON.parse(process.argv[2] ?? '{}') as HubRepos;
  void startHubServer(repos).then((hub) => {
    const shas = Object.fromEntries(
      Object.entries(repos).flatMap(([id, r]) =>
        Object.keys(r.revisions).map((n) => [`${id}@${n}`, hub.sha(r.type === 'dataset' ? `datasets/${id}` : id, n)]),
      ),
    );
    process.stdout.write(JSON.stringify({ endpoint: hub.endpoint, token: hub.token, shas }) + '\n');
  });
}
