import { createApp } from 'vue';
import App from './App.vue';
import { i18n, currentLocale } from './i18n.ts';
import { adoptTokenFromUrl } from './lib/session.ts';
import './style.css';

adoptTokenFromUrl();

document.documentElement.lang = currentLocale();
createApp(App).use(i18n).mount('#app');
