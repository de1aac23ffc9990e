/**
 * Activities throw failures through here, so whether a type is retried is the registry's decision
 * (src/contracts/failures.ts), never the call site's: a call site cannot throw `InvalidSpec` as
 * retryable in one place and non-retryable in another.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { FAILURES, type FailureType } from '../src/contracts/failures';

export function failure(type: FailureType, message: string, ...details: unknown[]): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: !FAILURES[type].retryable, details });
}
