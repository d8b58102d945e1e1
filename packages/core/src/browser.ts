/**
 * The `<script src>` build: everything of the package on one global, `Cometkit`
 * (`Cometkit.createCometClient(...)`), with ky and eventemitter3 inside.
 */
export * from './index';
