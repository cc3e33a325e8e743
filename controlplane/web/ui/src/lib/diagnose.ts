// Asking the control plane why a domain does (not) work: GET /api/domains/{d}/diagnose. The
// answer is a report, or a sentence saying why there is none: the API's own sentence (already in
// the page's language) and, when the domain was diagnosed too often (429 diagnose_rate_limited),
// when to try again, from Retry-After.
import type { Api, Report } from './api/client';
import { problemText } from './api/client';
import { formatIn, formatTime, t } from './i18n.svelte';

export type Diagnosis = { report: Report } | { error: string; code?: string; retryAt?: Date };

/** retryAfter reads Retry-After (seconds, or an HTTP date) as a time; null when absent or bad. */
export function retryAfter(h: string | null, now = Date.now()): Date | null {
  if (!h) return null;
  if (/^\d+$/.test(h.trim())) return new Date(now + Number(h.trim()) * 1000);
  const at = Date.parse(h);
  return Number.isNaN(at) ? null : new Date(at);
}

/** retrySentence says when a refused report may be asked again, in the page's language. */
export function retrySentence(at: Date, now = Date.now()): string {
  return t('diag.retryAt', { when: formatIn((at.getTime() - now) / 1000), time: formatTime(at) });
}

export async function diagnose(api: Api, domain: string): Promise<Diagnosis> {
  try {
    const { data, error, response } = await api.GET('/api/domains/{d}/diagnose', { params: { path: { d: domain } } });
    if (data) return { report: data };
    const code = error && typeof error === 'object' && 'code' in error ? String((error as { code: unknown }).code) : undefined;
    const detail = problemText(error, `HTTP ${response.status}`);
    if (response.status === 429) {
      const at = retryAfter(response.headers.get('Retry-After'));
      return { error: at ? `${sentence(detail)} ${retrySentence(at)}` : sentence(detail), code, retryAt: at ?? undefined };
    }
    return { error: t('diag.error', { detail }), code };
  } catch {
    return { error: t('error.network') };
  }
}

/** sentence ends the API's sentence with a full stop, so the next one can follow it. */
function sentence(s: string): string {
  const trimmed = s.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : trimmed + '.';
}
