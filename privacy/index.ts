/**
 * Public surface of tayguard's differential-privacy engine: accountants, per-example clipping, Gaussian
 * noise, the DP-SGD gradient, Poisson samplers, the budget ledger and adaptive clipping.
 * See docs/privacy.md for what the guarantee covers.
 */
export * from './accountants';
export * from './clipping';
export { addNoise, createGaussianSource } from './noise';
export type { GaussianSource, NoiseKind, NoiseOptions } from './noise';
export { privateGradients } from './dp-sgd';
export type { PrivateGradientOptions, PrivateGradients } from './dp-sgd';
export { StreamingPoissonSampler, createUniformSource, fixedDatasetBatches } from './sampler';
export type { StreamingBatch, StreamingSamplerOptions, StreamingSamplerState, UniformKind, UniformOptions, UniformSource } from './sampler';
export { PrivacyBudget, sourceSampleRate } from './budget';
export type { BudgetOptions, BudgetState, BudgetStatus, PrivacyUnit, SourceDecision, SourceRefusal, StepPlan } from './budget';
export { AdaptiveClipper, adjustedNoiseMultiplier } from './adaptive-clip';
export type { AdaptiveClipOptions, AdaptiveClipState, ClipUpdate } from './adaptive-clip';
