/**
 * Hub model ids (`owner/name` or `name`), shaped as huggingface_hub's `validate_repo_id` accepts them.
 * Pure (no node builtins): the run workflow decides by shape alone whether a model needs staging.
 */
const HUB_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

/** Why `id` is not a well-formed hub id, or null when it is. */
export function hubIdProblem(id: string): string | null {
  if (!HUB_ID.test(id)) return 'letters, digits, "-", "_" or "." in `name` or `owner/name`';
  if (id.length > 96) return 'at most 96 characters';
  if (id.includes('--') || id.includes('..')) return 'no "--" or ".."';
  if (/[.-]$/.test(id)) return 'no trailing "." or "-"';
  return null;
}

/**
 * Whether a model path names a hub model rather than a store prefix or a local directory: not a URL,
 * not `.`-, `/`- or `~`-rooted, and well-formed. A relative directory that exists locally is the
 * caller's to rule out (activities/model-source.ts checks the disk first).
 */
export function looksLikeHubId(path: string): boolean {
  if (/^[a-z0-9]+:\/\//i.test(path) || /^[./~]/.test(path)) return false;
  return hubIdProblem(path) === null;
}

/** A full commit sha: a revision that can never move. */
export function isCommitSha(rev: string | undefined): rev is string {
  return !!rev && /^[0-9a-f]{40}$/.test(rev);
}
