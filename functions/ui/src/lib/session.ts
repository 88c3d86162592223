// Who is signed in, and what the shell should show. The token lives where phpBorg keeps it
// (localStorage `access_token`), so pages served under phpBorg's origin need no second sign-in.
import { reactive } from 'vue';

export type View = 'loading' | 'signin' | 'forbidden' | 'ready';

export const TOKEN_KEY = 'access_token';

export const session = reactive({
  view: 'loading' as View,
  username: '',
  /** why the user was sent back to sign in (expired token…), shown on the form */
  notice: '',
  /** the install's time zone (phpBorg's app.timezone…): every time on the pages is shown in it */
  timezone: '' as string,
});

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string): void {
  localStorage.setItem(TOKEN_KEY, token);
  session.username = usernameOf(token);
}

/**
 * A sign-in link (`…/#access_token=TOKEN`, printed by `npm start`) carries the token in the fragment,
 * which browsers never send to a server. It is kept where phpBorg keeps it and removed from the
 * address bar at once, so it is neither bookmarked nor shared by accident.
 */
export function adoptTokenFromUrl(): void {
  const m = /^#access_token=([^&]+)/.exec(location.hash);
  if (!m) return;
  try {
    setToken(decodeURIComponent(m[1]!));
  } catch {
    /* storage refused (private mode): the sign-in form remains */
  }
  history.replaceState(null, '', location.pathname + location.search);
}

export function clearToken(): void {
  localStorage.removeItem(TOKEN_KEY);
  session.username = '';
}

/** The display name inside the token (the server, not this, decides what the token is worth). */
export function usernameOf(token: string): string {
  try {
    const part = token.split('.')[1] ?? '';
    const json = JSON.parse(decodeURIComponent(escape(atob(part.replace(/-/g, '+').replace(/_/g, '/')))));
    return typeof json.username === 'string' ? json.username : typeof json.email === 'string' ? json.email : '';
  } catch {
    return '';
  }
}

export function signOut(notice = ''): void {
  clearToken();
  session.notice = notice;
  session.view = 'signin';
}
