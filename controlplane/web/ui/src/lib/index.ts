// What the ERP's own Svelte frontend imports: the page components take an API client as an
// input (createApi, or any openapi-fetch client of these paths) and, optionally, a live event
// source (connectLive).
export { createApi, problemText } from './api/client';
export type { Api, Domain, DomainStats, Part, Report } from './api/client';
export { diagnose } from './diagnose';
export { connectLive } from './live.svelte';
export { i18n, setLocale, t } from './i18n.svelte';
export { default as Domains } from './pages/Domains.svelte';
export { default as DomainsTab } from './pages/DomainsTab.svelte';
export { default as DnsWizard } from './pages/DnsWizard.svelte';
export { default as Dashboard } from './pages/Dashboard.svelte';
export { default as Tunnels } from './pages/Tunnels.svelte';
export { default as DiagnosisReport } from './components/DiagnosisReport.svelte';
