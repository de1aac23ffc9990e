/** Records a transfer's progress reports and checks what every report stream must satisfy. */
import { strict as assert } from 'node:assert';
import type { TransferOptions, TransferProgress } from '../../src/store';

export interface ProgressLog extends TransferOptions {
  reports: TransferProgress[];
  /** Asserts: ≥ `minReports` reports, all with total `totalBytes`, bytes never decreasing, ending at the total. */
  check(totalBytes: number, minReports?: number): void;
}

/** Options that report every `everyBytes` bytes (and never by time), collecting each report. */
export function progressLog(everyBytes = 1 << 20): ProgressLog {
  const reports: TransferProgress[] = [];
  return {
    reports,
    onProgress: (p) => reports.push({ ...p }),
    progressEveryMs: 60_000,
    progressEveryBytes: everyBytes,
    check(totalBytes, minReports = 3) {
      assert.ok(reports.length >= minReports, `want ≥ ${minReports} reports, got ${JSON.stringify(reports)}`);
      assert.equal(reports[0]!.bytes, 0, 'the first report comes before any byte moved');
      for (const [i, r] of reports.entries()) {
        assert.equal(r.totalBytes, totalBytes, `report ${i}: totalBytes`);
        assert.ok(r.bytes <= totalBytes, `report ${i}: bytes ${r.bytes} > total ${totalBytes}`);
        if (i > 0) {
          assert.ok(r.bytes >= reports[i - 1]!.bytes, `report ${i}: bytes went backwards`);
          assert.ok(
            (r.hashedBytes ?? 0) >= (reports[i - 1]!.hashedBytes ?? 0),
            `report ${i}: hashedBytes went backwards`,
          );
        }
      }
      assert.equal(reports.at(-1)!.bytes, totalBytes, 'the last report is the total');
      // Strictly increasing somewhere in between: bytes were reported as they moved, not only at the end.
      assert.ok(
        reports.some((r) => r.bytes > 0 && r.bytes < totalBytes),
        `no intermediate report: ${JSON.stringify(reports)}`,
      );
    },
  };
}
