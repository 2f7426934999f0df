/**
 * Checked element access for loops whose index the code has already bounded (columns of one
 * batch, parallel key/count arrays), where `noUncheckedIndexedAccess` cannot follow the proof.
 * A miss is a bug in that proof, so it throws a RangeError naming the index instead of letting
 * `undefined` flow on as a number or a string. Small enough for V8 to inline: in a loop that
 * never misses, the check costs one compare.
 */
export function at<T>(items: ArrayLike<T>, i: number): T {
  const v = items[i];
  if (v === undefined) throw new RangeError(`index ${i} is outside 0..${items.length - 1}`);
  return v;
}
