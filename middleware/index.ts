/** The composition layer around an online learner: stage chains and the learner adapter. */
export { compose, type Next, type Stage } from './chain';
export { TfjsLearner, type Learner, type WeightsSnapshot } from './learner';
export { denseFeaturizer, encodeBatch, fnv1a, hashedTextFeaturizer, tokenize, type Featurizer, type Payload } from './featurize';
export { fastPredictor } from './fast-predict';
