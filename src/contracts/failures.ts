/**
 * The failure-type registry (STYLE.md rule 13): every `ApplicationFailure` type an activity or
 * workflow throws, whether a retry could ever help, and the trainer's exit codes. Temporal matches
 * a failure's `type` against a retry policy's `nonRetryableErrorTypes`, so a type is permanent in
 * every policy or in none: the policies take `NON_RETRYABLE_TYPES` from here instead of listing
 * names, and activities throw through `failure()` (activities/failure.ts), which reads `retryable`
 * from here. trainer/events.py mirrors the trainer's part (its error classes' `type`
 * and `exit_code`, its exit constants); test/python/test_trainer_protocol.py holds the two
 * together through the generated schema/trainer-protocol.json.
 *
 * Pure data, no imports: workflows import it, and the workflow sandbox has no node builtins.
 */

export interface FailureInfo {
  /** False: a retry repeats the failure (bad input, a missing model): the run fails at once. */
  readonly retryable: boolean;
  /** The trainer's exit code when the trainer raises it (an `error` event precedes the exit). */
  readonly trainerExit?: number;
  /**
   * Listed only in these workflows' retry policies. Temporal also matches the `name` of a plain
   * Error against `nonRetryableErrorTypes`, and a name can collide with a library's.
   */
  readonly onlyIn?: readonly PolicyWorkflow[];
  readonly doc: string;
}

/** The workflows whose activity proxies carry retry policies. */
export type PolicyWorkflow = 'fineTuneRun' | 'prepareData';

export const FAILURES = {
  InvalidSpec: {
    retryable: false,
    trainerExit: 2,
    doc: 'a malformed grid, run or trainer spec (a missing or unknown field, a bad value)',
  },
  ModelNotFound: {
    retryable: false,
    trainerExit: 2,
    doc: 'the model path (or an adapter directory) holds no loadable model',
  },
  ModelGated: {
    retryable: false,
    trainerExit: 2,
    doc: 'the hub refused the model (401/403: gated or private) with no HF_TOKEN, or one it does not accept',
  },
  RevisionNotFound: {
    retryable: false,
    trainerExit: 2,
    doc: "the model's revision (branch, tag or commit sha) does not exist on the hub",
  },
  UnsupportedMethod: { retryable: false, trainerExit: 2, doc: 'the method, optimizer or quantization cannot run here' },
  ExportParity: {
    retryable: false,
    trainerExit: 2,
    doc: 'ONNX Runtime disagrees with PyTorch beyond the tolerance (export)',
  },
  ModelTooLarge: {
    retryable: false,
    trainerExit: 2,
    doc:
      'a full fine-tune whose estimated memory (parameters × bytes + activations) exceeds the device; ' +
      'refused before weights load (trainer) or at validate (src/config/resources.ts)',
  },
  EngineUnsupported: {
    retryable: false,
    trainerExit: 2,
    doc: 'eval.engine "torch" on a model the torch engine cannot load (no weights transformers reads, an unknown architecture)',
  },
  TrainerError: { retryable: false, trainerExit: 2, doc: "the trainer's base class of failures a retry would repeat" },
  CheckpointRejected: {
    retryable: false,
    trainerExit: 3,
    doc:
      '--resume-from cannot continue this checkpoint; the activity falls back to an older one (activities/resume.ts) ' +
      'and fails only when a fresh start is refused',
  },
  InvalidData: { retryable: false, doc: 'a data file or split is unusable (no usable records, a changed checksum)' },
  InvalidModel: { retryable: false, doc: 'the exported model or its tokenizer cannot be loaded' },
  NotFound: {
    retryable: false,
    // The AWS SDK names a HEAD 404 `NotFound` too; in the store-heavy run activities such an error
    // escaping would be a store fault worth retrying, so only the data proxies list the name.
    onlyIn: ['prepareData'],
    doc: 'a dataset URL or file does not exist or refuses access',
  },
  ChecksumMismatch: {
    retryable: true,
    doc: 'a download arrived with other bytes than expected: maybe a truncated transfer',
  },
  CheckpointUploadFailed: {
    retryable: true,
    doc: 'the store stayed unreachable for a checkpoint upload; the retry resumes from the last commit',
  },
  Preempted: {
    retryable: true,
    doc: 'the trainer checkpointed on SIGTERM and exited 75; the retry resumes with no step lost',
  },
  TrainerCrashed: {
    retryable: true,
    doc: 'the trainer exited otherwise without an error event of its own (infrastructure)',
  },
  ExportFailed: {
    retryable: true,
    doc: 'the export exited otherwise without an error event of its own (infrastructure)',
  },
} as const satisfies Record<string, FailureInfo>;

export type FailureType = keyof typeof FAILURES;

/** `FailureType.InvalidSpec === 'InvalidSpec'`: a checked name instead of a string literal. */
export const FailureType = Object.fromEntries(Object.keys(FAILURES).map((k) => [k, k])) as {
  readonly [K in FailureType]: K;
};

/** Every type a retry would repeat. */
export const NON_RETRYABLE_TYPES: readonly FailureType[] = (Object.keys(FAILURES) as FailureType[]).filter(
  (t) => !FAILURES[t].retryable,
);

/** A retry policy's `nonRetryableErrorTypes` in `workflow`: every permanent type, less those listed only elsewhere. */
export function nonRetryableTypes(workflow: PolicyWorkflow): FailureType[] {
  return NON_RETRYABLE_TYPES.filter((t) => {
    const onlyIn = (FAILURES[t] as FailureInfo).onlyIn;
    return !onlyIn || onlyIn.includes(workflow);
  });
}

/**
 * The trainer's exit codes (docs/contracts.md §2); trainer/events.py defines the same constants.
 * Any other code (1, a signal) is infrastructure: retryable.
 */
export const TRAINER_EXIT = {
  done: 0,
  /** A failure a retry would repeat (bad spec, unknown model, unsupported method, export parity). */
  invalid: 2,
  /** `--resume-from` cannot be used: fall back to an older checkpoint or a fresh start. */
  checkpointRejected: 3,
  /** Checkpointed after SIGTERM/SIGINT (EX_TEMPFAIL). */
  preempted: 75,
} as const;
