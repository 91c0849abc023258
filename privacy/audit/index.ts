/**
 * Empirical privacy auditing: membership-inference attacks (loss threshold, offline LiRA), their metrics
 * (AUC, TPR at low FPR, the DP trade-off bound), and the one-run ε lower bound (Steinke et al. 2023) that
 * checks a claimed ε against what the trained model actually leaks about canaries.
 */
export { dpTprBound, dpTprBounds, membershipAdvantage, miaMetrics, rocAuc, rocCurve, tprAtFpr, tprAtFprFromRoc } from './metrics';
export type { MiaMetrics, RocPoint, TprRule } from './metrics';
export {
  crossEntropyLosses,
  lossAttackScores,
  lossAttackScoresForModel,
  predictProbabilities,
  yeomMembershipGuess,
} from './loss-attack';
export type { Probabilities } from './loss-attack';
export { fitOutDistribution, liraOfflineScores, logitConfidence, oneSidedScore } from './lira';
export type { OutDistribution } from './lira';
export { defaultCandidates, drawCanaryMembership, epsilonLowerBound, oneRunAudit, oneRunPValue } from './one-run';
export type {
  CandidateResult,
  CanaryMembership,
  CoinKind,
  GuessCandidate,
  OneRunAuditOptions,
  OneRunAuditResult,
  OneRunCounts,
} from './one-run';
