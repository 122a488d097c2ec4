import type { AuditProducer, Execution } from '../producers/index.js';

/**
 * Three simulated workflows of a billing/CRM shop, instrumented with the
 * producer client the way a real workflow would be: inputs with customer
 * PII, timed steps, branch decisions, retries, failures (some of them with
 * PII in the error text) and a few executions that never finish. Every
 * customer value is synthetic (example.com addresses, Ofcom drama numbers).
 */

/** How one simulated execution ended. */
export type DemoStatus = 'success' | 'failed' | 'partial' | 'unfinished';

export interface DemoOutcome {
  workflowId: string;
  executionId: string;
  status: DemoStatus;
  /** The execution's error text mentions customer PII (the tokenizer must catch it). */
  piiInError: boolean;
}

/** A seeded random source, so a demo run can be repeated (`--seed`). */
export type Random = () => number;

/** mulberry32: a small, fast 32-bit PRNG; quality is ample for picking demo branches. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface DemoWorkflow {
  workflowId: string;
  name: string;
  run(audit: AuditProducer, random: Random): Promise<DemoOutcome>;
}

const FIRST = ['Ann', 'Bob', 'Chloe', 'Dev', 'Elif', 'Femi', 'Grace', 'Hiro', 'Ines', 'Jonas'];
const LAST = ['Archer', 'Byrne', 'Chen', 'Dubois', 'Eze', 'Fischer', 'Garcia', 'Haddad', 'Ivanova', 'Jensen'];
const STREETS = ['Baker Street', 'Mill Lane', 'Station Road', 'High Street', 'Church Walk'];

interface Customer {
  customer_id: string;
  customer_name: string;
  customer_email: string;
  phone_number: string;
  billing_address: string;
}

function customer(random: Random): Customer {
  const i = Math.floor(random() * 1000);
  const first = FIRST[i % FIRST.length]!;
  const last = LAST[Math.floor(i / 10) % LAST.length]!;
  return {
    customer_id: `C-${1000 + i}`,
    customer_name: `${first} ${last}`,
    customer_email: `${first}.${last}${i}@example.com`.toLowerCase(),
    phone_number: `+44 20 7946 0${String(i).padStart(3, '0')}`,
    billing_address: `${1 + (i % 99)} ${STREETS[i % STREETS.length]}, London`,
  };
}

const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Simulated work of a step: 2-30 ms. */
const work = (random: Random) => sleep(2 + Math.floor(random() * 28));

class StepFailure extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

/** Runs `fn` as a step, retrying once when it throws a transient failure; returns the result or the final error. */
async function stepWithRetry<T>(run: Execution, name: string, input: unknown, fn: (attempt: number) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: StepFailure }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { ok: true, value: await run.step(name, () => fn(attempt), { input, attempt }) };
    } catch (err) {
      const failure = err instanceof StepFailure ? err : new StepFailure('Error', String(err));
      if (attempt >= 2 || failure.type !== 'TransientError') return { ok: false, error: failure };
    }
  }
}

/** WF-003 Invoice sync: fetch, approve above 10,000, post to the ERP (transient timeouts retried; some rejections mention the customer). */
const invoiceSync: DemoWorkflow = {
  workflowId: 'WF-003',
  name: 'Invoice sync',
  async run(audit, random) {
    const c = customer(random);
    const amount = Math.round(500 + random() * 20_000);
    const run = await audit.startExecution({
      workflowId: this.workflowId,
      workflowName: this.name,
      workflowVersion: '2.3.1',
      trigger: pick(random, ['webhook', 'schedule'] as const),
      triggeredBy: { kind: 'service', id: 'erp-connector' },
      input: { invoice_id: `INV-${Math.floor(random() * 1e6)}`, customer_id: c.customer_id, customer_email: c.customer_email, customer_name: c.customer_name, amount, currency: 'EUR' },
    });
    const outcome = (status: DemoStatus, piiInError = false): DemoOutcome => ({ workflowId: this.workflowId, executionId: run.executionId, status, piiInError });
    const fetched = await stepWithRetry(run, 'fetch-invoice', { customer_id: c.customer_id }, async () => {
      await work(random);
      return { lines: 1 + Math.floor(random() * 5), amount };
    });
    if (!fetched.ok) return outcome('failed');
    const manual = amount > 10_000;
    await run.decision({
      condition: 'amount > 10000',
      taken: manual ? 'manual-approval' : 'auto-approve',
      reason: `amount=${amount} ${manual ? 'exceeds' : 'within'} 10000`,
      values: { amount },
    });
    if (manual) {
      await run.step('request-approval', async () => {
        await work(random);
        return { approver: 'finance-team', approved: true };
      });
    }
    const roll = random();
    const posted = await stepWithRetry(run, 'post-to-erp', { amount, currency: 'EUR' }, async (attempt) => {
      await work(random);
      if (roll < 0.12) throw new StepFailure('ErpRejected', `ERP rejected the invoice for ${c.customer_email}: billing address not on file`);
      if (roll < 0.3 && attempt === 1) throw new StepFailure('TransientError', 'ERP timed out after 5000 ms');
      return { erp_document: `DOC-${Math.floor(random() * 1e6)}` };
    });
    if (!posted.ok) {
      await run.finish('failed', { error: posted.error });
      return outcome('failed', posted.error.type === 'ErpRejected');
    }
    await run.finish('success', { output: { erp_document: posted.value.erp_document } });
    return outcome('success');
  },
};

/** WF-007 Refund approval: look up the order, route by amount, pay out (the payment provider declines some). */
const refundApproval: DemoWorkflow = {
  workflowId: 'WF-007',
  name: 'Refund approval',
  async run(audit, random) {
    const c = customer(random);
    const refund = Math.round(5 + random() * 1_500);
    const run = await audit.startExecution({
      workflowId: this.workflowId,
      workflowName: this.name,
      workflowVersion: '1.0.4',
      trigger: 'api',
      triggeredBy: { kind: 'user', id: pick(random, ['agent-17', 'agent-23', 'agent-42']) },
      input: { order_id: `ORD-${Math.floor(random() * 1e6)}`, customer_email: c.customer_email, refund_amount: refund, reason: pick(random, ['damaged', 'late', 'wrong item']) },
    });
    const outcome = (status: DemoStatus): DemoOutcome => ({ workflowId: this.workflowId, executionId: run.executionId, status, piiInError: false });
    await run.step('lookup-order', async () => {
      await work(random);
      return { paid: refund + 20, tier: pick(random, ['standard', 'gold']) };
    });
    const review = refund > 500;
    await run.decision({
      condition: 'refund_amount > 500',
      taken: review ? 'finance-review' : 'auto-refund',
      reason: `refund_amount=${refund}`,
      values: { refund_amount: refund },
    });
    const declined = random() < 0.15;
    const paid = await stepWithRetry(run, 'issue-refund', { refund_amount: refund }, async () => {
      await work(random);
      if (declined) throw new StepFailure('PaymentDeclined', 'payment provider declined the refund: card expired');
      return { refund_id: `RF-${Math.floor(random() * 1e6)}` };
    });
    if (!paid.ok) {
      // The refund is recorded as owed: partial, not failed.
      await run.finish(review ? 'failed' : 'partial', { error: paid.error });
      return outcome(review ? 'failed' : 'partial');
    }
    await run.finish('success', { output: paid.value });
    return outcome('success');
  },
};

/** WF-011 Customer onboarding: KYC check, decision on the score, account creation; a few runs hang and never finish. */
const customerOnboarding: DemoWorkflow = {
  workflowId: 'WF-011',
  name: 'Customer onboarding',
  async run(audit, random) {
    const c = customer(random);
    const run = await audit.startExecution({
      workflowId: this.workflowId,
      workflowName: this.name,
      workflowVersion: '3.0.0',
      trigger: 'webhook',
      triggeredBy: { kind: 'system', id: 'signup-form' },
      input: { ...c, plan: pick(random, ['free', 'pro', 'enterprise']) },
    });
    const outcome = (status: DemoStatus, piiInError = false): DemoOutcome => ({ workflowId: this.workflowId, executionId: run.executionId, status, piiInError });
    const score = Math.round(random() * 100) / 100;
    const kyc = await stepWithRetry(run, 'verify-identity', { customer_id: c.customer_id }, async () => {
      await work(random);
      if (score < 0.08) throw new StepFailure('KycRejected', `KYC provider rejected phone ${c.phone_number}`);
      return { score };
    });
    if (!kyc.ok) {
      await run.finish('failed', { error: kyc.error });
      return outcome('failed', true);
    }
    const branch = score < 0.3 ? 'reject' : score < 0.6 ? 'manual-review' : 'approve';
    await run.decision({ condition: 'kyc_score < 0.3 / < 0.6', taken: branch, reason: `kyc_score=${score}`, values: { kyc_score: score } });
    // A few executions hang waiting for a manual review that never comes: they start and never finish.
    if (branch === 'manual-review' && random() < 0.15) return outcome('unfinished');
    if (branch === 'reject') {
      await run.finish('success', { output: { onboarded: false } });
      return outcome('success');
    }
    await run.step('create-account', async () => {
      await work(random);
      return { account_id: `A-${Math.floor(random() * 1e6)}` };
    });
    await run.finish('success', { output: { onboarded: true } });
    return outcome('success');
  },
};

export const DEMO_WORKFLOWS: readonly DemoWorkflow[] = [invoiceSync, refundApproval, customerOnboarding];
