/**
 * tayguard's public surface for library use. The sidecar (`tayguard serve`) is built from the same pieces:
 * config, the Sidecar itself, trainers, and the middleware / filters / privacy surfaces.
 */
export { loadConfig, type Config } from './config';
export { TayguardError, hasCode, ERROR_CODES, type ErrorCode } from '../core/errors';
export { createSidecar, Sidecar } from './sidecar';
export type { SidecarStatus } from './http/types';
export { Pipeline, type PipelineOptions, type QuarantineSink } from './pipeline';
export { PlainTrainer } from '../train/plain';
export { DpTrainer, type DpOptions } from '../train/dp';
export type { Trainer, AdmitResult } from '../train/types';
export type { TrainingRecord, RawMessage } from '../core/record';
export { startLocalBroker, type LocalBroker } from './dev/broker';
export * as middleware from '../middleware';
export * as filters from '../filters';
export * as privacy from '../privacy';
