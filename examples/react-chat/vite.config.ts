import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Served by the demo under /react/. `@cometkit/react` and `@cometkit/core` resolve to their
// built `dist` like in any application, so build the packages first (`pnpm build`).
export default defineConfig({
  base: '/react/',
  plugins: [react()],
  server: {
    // The demo backend (`examples/demo`) on port 3000 serves the endpoint and the history.
    proxy: { '/api': { target: 'http://localhost:3000', ws: true } },
  },
  build: { outDir: 'dist', emptyOutDir: true },
});
