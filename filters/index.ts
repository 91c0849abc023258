export type { Detector, Reason, Verdict } from './types';
export { ACCEPT } from './types';
export { parseRecord, type ParseResult, type SchemaLimits } from './schema';
