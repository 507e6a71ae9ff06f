import { MeshcaError } from '../pki/errors.js';
import type { Store } from '../store/index.js';
import type { SignResult } from './authority.js';
import { IssuanceService, type IssuanceDeps, type IssueRequest } from './issuance.js';

/**
 * IssuanceService that answers only once the request's audit row is committed (auditDurable).
 * IssuanceService queues the row and returns; this waits for the store's flush, which resolves
 * once every row queued before it is written, so concurrent requests share one commit (group
 * commit, see store/postgres/audit-queue.ts). A certificate whose row cannot be written is not
 * handed out: the caller gets `unavailable` and retries. The window this closes: with batched,
 * non-durable writes a process killed with SIGKILL loses the rows of up to auditFlushMs of
 * answered requests; here it loses none that were answered (rows of unanswered ones may or may
 * not be written, which errs on the side of over-reporting).
 */
export class DurableIssuanceService extends IssuanceService {
  private readonly store: Store;

  constructor(d: IssuanceDeps) {
    super(d);
    this.store = d.store;
  }

  override async issue(req: IssueRequest): Promise<SignResult> {
    let result: SignResult;
    try {
      result = await super.issue(req);
    } catch (e) {
      // A refusal's row is made durable too, but its failure must not mask the refusal itself.
      await this.store.flush().catch(() => {});
      throw e;
    }
    try {
      await this.store.flush();
    } catch (e) {
      throw new MeshcaError(
        'unavailable',
        'audit_unavailable',
        `the certificate was not handed out: its audit record could not be written (${(e as Error).message})`,
        { cause: e },
      );
    }
    return result;
  }
}
