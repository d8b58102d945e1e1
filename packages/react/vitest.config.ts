import { defineProject } from 'vitest/config';
import { alias } from '../../vitest.shared';

export default defineProject({
  resolve: { alias },
  test: {
    name: 'react',
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}', 'test/**/*.test.{ts,tsx}'],
  },
});
