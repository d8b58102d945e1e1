import { CometProvider } from '@cometkit/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app';
import { client } from './comet';
import '../../shared/demo.css';

const root = document.getElementById('root');
if (!root) throw new Error('#root is missing from index.html');

createRoot(root).render(
  <StrictMode>
    <CometProvider client={client}>
      <App />
    </CometProvider>
  </StrictMode>,
);
