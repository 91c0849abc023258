/**
 * What the HTTP layer sees of the sidecar, beside the app that uses it: src/http/app.ts imports these types and
 * never src/sidecar.ts (which implements them), so the two never import each other.
 */
import type { Payload } from '../../middleware/featurize';
import type { GateAlert } from '../../train/gate';
import type { OutcomeCounts } from '../counts';
import type { HealthReport } from '../health';
import type { Metrics } from '../metrics';
import type { AdminView } from './admin';
import type { OperatorSample, PublicSample } from '../history';

export interface SidecarStatus {
  readonly ready: boolean;
  readonly joined: boolean;
  readonly modelLoaded: boolean;
  readonly stopping: boolean;
  readonly modelVersion: number;
  readonly checkpointSeq: number;
  readonly backend: string;
  readonly inputDim: number;
  readonly counts: OutcomeCounts;
  readonly lastCheckpointAt: string | null;
  readonly lastCheckpointError: string | null;
  readonly gate: { canaries: number; accepted: number; rejected: number; alerts: GateAlert[] } | null;
  /** Failing checks behind a 503 (src/health.ts), and the numeric guard's recent rollbacks. */
  readonly health: HealthReport & { readonly stepRollbacks: number };
}

/** What the HTTP layer needs from the sidecar (src/sidecar.ts implements it; tests pass a Sidecar from createSidecar that never started Kafka). */
export interface SidecarView {
  readonly admin: AdminView;
  readonly metrics: Metrics;
  status(): SidecarStatus;
  predict(payloads: readonly Payload[]): { modelVersion: number; probabilities: number[][] };
  budget(): unknown;
  audit(): unknown;
  /** The figures at each checkpoint (src/history.ts), for GET /v1/history. */
  history(): { readonly capacity: number; publicSamples(): PublicSample[]; operatorSamples(): OperatorSample[] };
}
