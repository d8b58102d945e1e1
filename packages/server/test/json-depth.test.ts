/**
 * The depth of a published `data` is counted on its JSON text (`jsonTextProblem`, on every
 * publish) and must agree with the walk over values (`jsonProblem`, on request bodies and
 * frames), whatever strings, escapes and brackets inside strings the text holds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonProblem, jsonTextProblem } from '../src/engine/request';

/** Strings full of what a text scan could trip on. */
const tricky = fc.oneof(
  fc.string(),
  fc.constantFrom('"', '\\', '\\"', '\\\\"', '[', ']', '{', '}', '"[{', '\\u0022', 'é😀'),
);

const nested = (depth: number, leaf: unknown): unknown =>
  depth === 0 ? leaf : depth % 2 ? [nested(depth - 1, leaf)] : { k: nested(depth - 1, leaf) };

describe('jsonTextProblem', () => {
  it('agrees with the walk over the values on generated JSON', () => {
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        tricky,
        fc.integer(),
        fc.constant(null),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(tricky, tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, fc.integer({ min: 2, max: 6 }), (data, maxDepth) => {
        const text = JSON.stringify(data);
        expect(jsonTextProblem(text, maxDepth)).toBe(jsonProblem(data, maxDepth));
      }),
      { seed: 1_302_026, numRuns: 2_000 },
    );
  });

  it('counts levels exactly at the limit, and skips brackets inside strings', () => {
    for (const leaf of [1, '"]]]"', '\\', '[[[[[[[[', '\\"[[[[[[']) {
      expect(jsonTextProblem(JSON.stringify(nested(4, leaf)), 4)).toBeUndefined();
      expect(jsonTextProblem(JSON.stringify(nested(5, leaf)), 4)).toBe(
        'JSON nested deeper than 4 levels',
      );
    }
  });
});
