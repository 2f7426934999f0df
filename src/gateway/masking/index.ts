/**
 * masking/ — masks personal data and secrets in result rows on the wire.
 *   detectors.ts  content detectors with validators (Luhn, IBAN mod 97, SSN ranges, JWT header, ...)
 *   render.ts     type-preserving replacements: full, partial (last 4) and deterministic hash
 *   masker.ts     per-result plans from RowDescription; DataRow and COPY OUT rewriting
 */
export { DETECTOR_IDS, DetectorSet, ibanValid, luhnValid } from './detectors.js';
export type { DetectorId, DetectorMatch } from './detectors.js';
export { MASK_MODES, Renderer, typeClass } from './render.js';
export type { MaskMode, TypeClass } from './render.js';
export { DEFAULT_MASKING, Masker } from './masker.js';
export type { ColumnRule, MaskCounts, MaskingPolicy, ResultPlan } from './masker.js';
