// The typed API client: openapi-fetch over the paths generated from the control plane's
// /openapi.json (schema.d.ts; `make ui` regenerates it). Pages and components receive a client as
// an input, so the ERP's own frontend can pass one made with its own base URL and credentials.
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Api = Client<paths>;
export type Domain = components['schemas']['Domain'];
// The stats' schema is named by the API's Go type; the path's answer is what the UI relies on.
export type DomainStats = paths['/api/domains/stats']['get']['responses'][200]['content']['application/json'];
export type Customer = components['schemas']['Customer'];
export type Agent = components['schemas']['Agent'];
export type Problem = components['schemas']['Problem'];
export type SessionInfo = components['schemas']['SessionInfo'];
export type Report = components['schemas']['Report'];
export type Part = components['schemas']['Part'];
export type Alert = components['schemas']['Alert'];

export interface ApiOptions {
  /** Where the control plane is: '' for the same origin (the UI served by the control plane). */
  baseUrl?: string;
  /** The language of every sentence the API returns ('es' or 'en'), asked per request. */
  locale?: () => string;
  /** Sent as Authorization: Bearer on every request, for scripts and other frontends; the web UI itself uses its session cookie instead. */
  token?: () => string | undefined;
  /** Called when the API says the caller is not signed in (401). */
  onUnauthorized?: () => void;
}

const unsafe = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** createApi returns a client; with a session, state-changing requests carry its CSRF token. */
export function createApi(opts: ApiOptions = {}): Api & { setCsrf(token: string | undefined): void } {
  let csrf: string | undefined;
  const client = createClient<paths>({ baseUrl: opts.baseUrl ?? '', credentials: 'same-origin' });
  client.use({
    onRequest({ request }) {
      request.headers.set('Accept-Language', opts.locale?.() ?? 'es');
      const token = opts.token?.();
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      if (csrf && unsafe.has(request.method)) request.headers.set('X-CSRF-Token', csrf);
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401 && !response.url.endsWith('/api/session')) opts.onUnauthorized?.();
      return response;
    },
  });
  return Object.assign(client, {
    setCsrf(token: string | undefined) {
      csrf = token;
    },
  });
}

/** A failed request, as a sentence (problem+json's detail, already in the request's language). */
export function problemText(error: unknown, fallback: string): string {
  if (error && typeof error === 'object') {
    const e = error as { detail?: unknown; message?: unknown; instructions?: unknown };
    if (typeof e.detail === 'string' && e.detail) return e.detail;
    if (typeof e.message === 'string' && e.message) {
      return typeof e.instructions === 'string' && e.instructions ? `${e.message}. ${e.instructions}` : e.message;
    }
  }
  return fallback;
}
