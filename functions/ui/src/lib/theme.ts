// Dark mode with Tailwind's class strategy: the `dark` class on <html>, remembered per browser.
import { ref } from 'vue';

const KEY = 'keeper_theme';
export const dark = ref(document.documentElement.classList.contains('dark'));

export function setDark(on: boolean): void {
  dark.value = on;
  // switch every colour at once: no button fading on its own after the rest of the page
  const still = document.createElement('style');
  still.textContent = '*,*::before,*::after{transition:none!important}';
  document.head.appendChild(still);
  document.documentElement.classList.toggle('dark', on);
  requestAnimationFrame(() => requestAnimationFrame(() => still.remove()));
  try {
    localStorage.setItem(KEY, on ? 'dark' : 'light');
  } catch {
    /* private mode: the toggle still works for this page */
  }
}
