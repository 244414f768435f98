/** Builds the web console's front end (web/) into dist/web, which `warden console` serves. */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: `${here}../dist/web`,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
});
