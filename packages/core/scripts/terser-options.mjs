// The terser options of the core's second minification pass: only safe transforms (two
// compress passes, no `unsafe*` option). Shared by scripts/minify.mjs and the size what-ifs
// (bench/suites/size-what-if.mjs), so the what-ifs are minified exactly as the shipped files.

/** Options for one file; `esm` for an ES module, `toplevel` when its top level is private. */
export const terserOptions = ({ esm, toplevel }) => ({
  ecma: 2020,
  module: esm,
  toplevel,
  compress: { passes: 2 },
  format: { comments: false },
});
