import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { messageOf, signIn, type Session } from '../api.ts';

/** Sign-in with the server's directory; only members of the admin group get a session. */
export function SignInPage({ error, onSignedIn }: { error: string; onSignedIn: (s: Session) => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [failure, setFailure] = useState(error);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setFailure('');
    try {
      onSignedIn(await signIn(user, password));
    } catch (err) {
      setFailure(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return html`
    <main id="main" class="signin">
      <h1>Tandem management console</h1>
      <form onSubmit=${(e: Event) => void submit(e)} aria-describedby=${failure ? 'signin-error' : undefined}>
        <label for="signin-user">User name</label>
        <input
          id="signin-user"
          name="user"
          autocomplete="username"
          required
          value=${user}
          onInput=${(e: Event) => setUser((e.target as HTMLInputElement).value)}
        />
        <label for="signin-password">Password</label>
        <input
          id="signin-password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value=${password}
          onInput=${(e: Event) => setPassword((e.target as HTMLInputElement).value)}
        />
        ${failure && html`<p id="signin-error" class="error" role="alert">${failure}</p>`}
        <button type="submit" disabled=${busy}>Sign in</button>
      </form>
      <p class="hint">Members of the server's admin group only.</p>
    </main>
  `;
}
