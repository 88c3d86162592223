// Vite build of the keeper pages. `base: './'` makes every asset URL relative, so the same build
// works at `/` and under `/keeper/` behind phpBorg's nginx.
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';
import tailwindcss from '@tailwindcss/vite';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  plugins: [vue(), tailwindcss()],
  logLevel: 'warn',
  // vue-i18n feature flags: composition API only, no devtools in production
  define: {
    __VUE_I18N_FULL_INSTALL__: true,
    __VUE_I18N_LEGACY_API__: false,
    __INTLIFY_PROD_DEVTOOLS__: false,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // `npx vite functions/ui` during development: the API stays on the runner.
    proxy: { '/api': 'http://127.0.0.1:8787' },
  },
});
