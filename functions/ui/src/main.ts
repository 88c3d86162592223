import { createApp } from 'vue';
import App from './App.vue';
import { i18n, currentLocale } from './i18n.ts';
import './style.css';

document.documentElement.lang = currentLocale();
createApp(App).use(i18n).mount('#app');
