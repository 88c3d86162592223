// Dark mode with Tailwind's class strategy: the `dark` class on <html>, remembered per browser.
import { ref } from 'vue';

const KEY = 'keeper_theme';
export const dark = ref(document.documentElement.classList.contains('dark'));

export function setDark(on: boolean): void {
  dark.value = on;
  document.documentElement.classList.toggle('dark', on);
  try {
    localStorage.setItem(KEY, on ? 'dark' : 'light');
  } catch {
    /* private mode: the toggle still works for this page */
  }
}
