import { existsSync, readFileSync } from 'node:fs';
import { type DefaultTheme, defineConfig } from 'vitepress';

/** Sidebar entries for the generated reference, written by scripts/api.mjs (absent before it runs). */
function generatedApi(): DefaultTheme.SidebarItem[] {
  const file = new URL('../api/generated/packages.json', import.meta.url);
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as DefaultTheme.SidebarItem[];
}

const sidebar: DefaultTheme.SidebarItem[] = [
  {
    text: 'Guide',
    items: [
      { text: 'Getting started', link: '/guide/getting-started' },
      { text: 'The demo', link: '/guide/demo' },
      { text: 'Script tag (no bundler)', link: '/guide/script-tag' },
      { text: 'The client', link: '/guide/client' },
      { text: 'The server', link: '/guide/server' },
      { text: 'Authentication', link: '/guide/authentication' },
      { text: 'React', link: '/guide/react' },
      { text: 'Angular', link: '/guide/angular' },
    ],
  },
  {
    text: 'Concepts',
    items: [
      { text: 'Connection state', link: '/concepts/state-machine' },
      { text: 'Transports and fallback', link: '/concepts/transports' },
      { text: 'Delivery and cursors', link: '/concepts/delivery' },
      { text: 'One connection per browser', link: '/concepts/multi-tab' },
      { text: 'History and resets', link: '/concepts/history' },
      { text: 'Presence', link: '/concepts/presence' },
      { text: 'Rewind and recovery', link: '/concepts/rewind' },
      { text: 'Topics', link: '/concepts/topics' },
      { text: 'Errors and diagnostics', link: '/concepts/errors' },
    ],
  },
  {
    text: 'Deploy',
    items: [
      { text: 'Load balancers and proxies', link: '/deploy/load-balancers' },
      { text: 'Several instances (Redis)', link: '/guide/scaling' },
      { text: 'Operations: metrics, limits, publishing', link: '/deploy/operations' },
      { text: 'Limits and security model', link: '/deploy/limits' },
    ],
  },
  {
    text: 'Reference',
    items: [
      { text: 'Wire protocol', link: '/protocol' },
      {
        text: 'API reference',
        link: '/api/',
        collapsed: false,
        items: [{ text: 'Generated', link: '/api/generated/' }, ...generatedApi()],
      },
      { text: 'Migrating from a hand-written client', link: '/migration' },
      { text: 'Design decisions', link: '/decisions' },
    ],
  },
];

export default defineConfig({
  title: 'cometkit',
  description:
    'Real-time server push that gets through where WebSockets do not: WebSocket, HTTP streaming, long-poll, no sticky sessions.',
  cleanUrls: true,
  lastUpdated: false,
  themeConfig: {
    nav: [
      { text: 'Guide', link: '/guide/getting-started', activeMatch: '/guide/' },
      { text: 'Concepts', link: '/concepts/state-machine', activeMatch: '/concepts/' },
      { text: 'Deploy', link: '/deploy/load-balancers', activeMatch: '/deploy/' },
      { text: 'Protocol', link: '/protocol' },
      { text: 'API', link: '/api/', activeMatch: '/api/' },
    ],
    sidebar,
    search: { provider: 'local' },
    outline: { level: [2, 3] },
  },
});
