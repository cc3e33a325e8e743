// The UI's words in Spanish (the default) and English. `en` must have every key of `es`: a
// missing translation is a type error (svelte-check), and the browser tests fail on any
// "⟦key⟧" left on a page. Sentences from the API arrive already in the chosen language
// (Accept-Language); only the UI's own words live here. Dates and numbers go through Intl.

const es = {
  'app.title': 'Sajet Domains',
  'app.skip': 'Saltar al contenido',
  'nav.dashboard': 'Panel',
  'nav.domains': 'Dominios',
  'nav.customers': 'Clientes',
  'nav.tunnels': 'Túneles y agentes',
  'nav.signout': 'Cerrar sesión',
  'nav.language': 'Idioma',
  'nav.main': 'Navegación principal',
  'role.admin': 'Administrador',
  'role.customer': 'Cliente {id}',
  'live.on': 'Actualización en vivo',
  'live.off': 'Sin actualización en vivo; reconectando…',
  'signin.title': 'Iniciar sesión',
  'signin.token': 'Token de API',
  'signin.tokenHelp': 'Pegue su token (sjt_…). Se cambia por una sesión y el navegador no lo guarda.',
  'signin.submit': 'Entrar',
  'signin.busy': 'Entrando…',
  'signin.link': 'Entrando con el enlace de acceso…',
  'common.loading': 'Cargando…',
  'common.retry': 'Reintentar',
  'common.cancel': 'Cancelar',
  'common.close': 'Cerrar',
  'common.none': '—',
  'common.yes': 'Sí',
  'common.no': 'No',
  'common.search': 'Buscar',
  'common.next': 'Página siguiente',
  'common.prev': 'Página anterior',
  'common.showing': 'Mostrando {from}–{to} de {total}',
  'common.copy': 'Copiar',
  'common.copyLabel': 'Copiar el valor de {what}',
  'common.copied': 'Copiado',
  'common.back': 'Volver',
  'state.pending_dns': 'Esperando DNS',
  'state.verifying': 'Verificando',
  'state.verification_failed': 'Verificación fallida',
  'state.expired': 'Caducado',
  'state.provisioning': 'Configurando',
  'state.ready': 'Listo para activar',
  'state.active': 'Activo',
  'state.deleting': 'Eliminando',
  'step.done': 'Hecho',
  'step.pending': 'Pendiente',
  'step.failed': 'Con error',
  'step.skipped': 'Omitido',
  'step.dns': 'DNS del dominio',
  'step.ownership': 'Propiedad (TXT)',
  'step.cloudflare': 'Registro en Cloudflare',
  'step.custom_hostname': 'Certificado (Cloudflare for SaaS)',
  'step.tunnel_ingress': 'Ruta en el túnel',
  'domains.title': 'Dominios',
  'domains.add': 'Agregar dominio',
  'domains.searchLabel': 'Buscar por nombre',
  'domains.empty': 'Todavía no hay dominios.',
  'domains.noMatch': 'Ningún dominio coincide con la búsqueda.',
  'domains.col.hostname': 'Dominio',
  'domains.col.platform': 'Subdominio de la plataforma',
  'domains.col.state': 'Estado',
  'domains.col.customer': 'Cliente',
  'domains.col.primary': 'Principal',
  'domains.open': 'Ver {host}',
  'add.title': 'Agregar dominio',
  'add.hostname': 'Nombre del dominio',
  'add.hostnameHelp': 'Por ejemplo www.su-empresa.com',
  'add.customer': 'Cliente (id)',
  'add.deployment': 'Despliegue (id, opcional)',
  'add.submit': 'Agregar',
  'add.busy': 'Agregando…',
  'add.useSuggestion': 'Usar {value}',
  'add.claimTitle': 'Para reclamarlo, publique este registro:',
  'add.claim': 'Reclamar el dominio',
  'wizard.title': 'Configurar {host}',
  'wizard.records': 'Registros DNS que debe crear',
  'wizard.col.type': 'Tipo',
  'wizard.col.name': 'Nombre',
  'wizard.col.value': 'Valor',
  'wizard.col.note': 'Nota',
  'wizard.required': 'obligatorio',
  'wizard.optional': 'opcional',
  'wizard.apex': '{host} es el dominio raíz: muchos proveedores no permiten un CNAME ahí. Use un registro ALIAS/ANAME o «CNAME flattening», y publique también el registro TXT.',
  'wizard.steps': 'Pasos',
  'wizard.evidence': 'Última comprobación',
  'wizard.noCheck': 'Todavía no se ha comprobado el DNS.',
  'wizard.checkedAt': 'Comprobado {when}',
  'wizard.resolver': 'Resolver',
  'wizard.resolvesTo': 'Resuelve hoy a',
  'wizard.nothing': 'nada (no existe)',
  'wizard.ok': 'correcto',
  'wizard.warnings': 'Avisos',
  'action.verify': 'Verificar',
  'action.verifying': 'Verificando…',
  'action.activate': 'Activar',
  'action.delete': 'Eliminar',
  'delete.title': 'Eliminar {host}',
  'delete.explain': 'El dominio dejará de enrutarse. Escriba {host} para confirmar.',
  'delete.confirmLabel': 'Nombre del dominio',
  'delete.submit': 'Eliminar definitivamente',
  'verify.ok': 'Verificado',
  'detail.notFound': 'Dominio no encontrado.',
  'detail.customer': 'Cliente {id}',
  'detail.primary': 'Dominio principal',
  'dashboard.title': 'Panel',
  'dashboard.total': 'Dominios en total',
  'dashboard.pending': 'Pendientes de verificación',
  'dashboard.active': 'Activos',
  'dashboard.inactive': 'Inactivos',
  'dashboard.errors': 'Con errores de configuración',
  'dashboard.deleting': 'Eliminándose',
  'customers.title': 'Clientes',
  'customers.col.company': 'Empresa',
  'customers.col.email': 'Correo',
  'customers.col.plan': 'Plan',
  'customers.col.domains': 'Dominios',
  'customers.empty': 'No hay clientes.',
  'customer.tabs': 'Secciones del cliente',
  'customer.tab.domains': 'Dominios',
  'customer.tab.summary': 'Resumen',
  'customer.primary': 'Subdominio principal de la plataforma',
  'customer.noPrimary': 'ninguno todavía',
  'customer.quota': '{used} de {quota} dominios',
  'tunnels.title': 'Túneles y agentes',
  'tunnels.empty': 'No hay agentes inscritos.',
  'tunnels.col.agent': 'Agente',
  'tunnels.col.tunnel': 'Túnel',
  'tunnels.col.connected': 'Conexión',
  'tunnels.col.version': 'Versión aplicada / deseada',
  'tunnels.col.error': 'Último error',
  'tunnels.col.seen': 'Último informe',
  'tunnels.connected': 'Conectado',
  'tunnels.disconnected': 'Desconectado',
  'tunnels.inSync': 'al día',
  'tunnels.behind': 'atrasado',
  'tunnels.stage': 'etapa {stage}',
  'tunnels.never': 'nunca',
  'tunnels.revoked': 'revocado',
  'diag.title': 'Diagnóstico',
  'diag.intro': '¿Por qué no funciona mi dominio? Se comprueba el camino completo: DNS, Cloudflare, el túnel y el backend visto desde cada servidor del túnel.',
  'diag.run': 'Diagnosticar',
  'diag.again': 'Diagnosticar de nuevo',
  'diag.running': 'Diagnosticando…',
  'diag.loading': 'Comprobando el DNS, Cloudflare, el túnel y el backend; puede tardar unos segundos.',
  'diag.checkedAt': 'Comprobado {when} en {duration}',
  'diag.parts': 'Partes comprobadas',
  'diag.fix': 'Qué hacer:',
  'diag.details': 'Detalles',
  'diag.detailsOf': 'de {part}',
  'diag.noDetails': 'Sin más detalles.',
  'diag.data': 'Datos técnicos',
  'diag.verdict.ok': 'Correcto',
  'diag.verdict.warn': 'Aviso',
  'diag.verdict.fail': 'Falla',
  'diag.verdict.unknown': 'Sin comprobar',
  'diag.retryAt': 'Puede volver a intentarlo {when} (a las {time}).',
  'diag.error': 'No se pudo diagnosticar el dominio: {detail}',
  'error.generic': 'Algo falló: {detail}',
  'error.network': 'No se pudo contactar con el servidor.',
  'error.session': 'Su sesión terminó. Inicie sesión de nuevo.',
} as const;

export type Key = keyof typeof es;

const en: Record<Key, string> = {
  'app.title': 'Sajet Domains',
  'app.skip': 'Skip to content',
  'nav.dashboard': 'Dashboard',
  'nav.domains': 'Domains',
  'nav.customers': 'Customers',
  'nav.tunnels': 'Tunnels and agents',
  'nav.signout': 'Sign out',
  'nav.language': 'Language',
  'nav.main': 'Main navigation',
  'role.admin': 'Administrator',
  'role.customer': 'Customer {id}',
  'live.on': 'Live updates',
  'live.off': 'No live updates; reconnecting…',
  'signin.title': 'Sign in',
  'signin.token': 'API token',
  'signin.tokenHelp': 'Paste your token (sjt_…). It is exchanged for a session and the browser does not keep it.',
  'signin.submit': 'Sign in',
  'signin.busy': 'Signing in…',
  'signin.link': 'Signing in with the sign-in link…',
  'common.loading': 'Loading…',
  'common.retry': 'Retry',
  'common.cancel': 'Cancel',
  'common.close': 'Close',
  'common.none': '—',
  'common.yes': 'Yes',
  'common.no': 'No',
  'common.search': 'Search',
  'common.next': 'Next page',
  'common.prev': 'Previous page',
  'common.showing': 'Showing {from}–{to} of {total}',
  'common.copy': 'Copy',
  'common.copyLabel': 'Copy the value of {what}',
  'common.copied': 'Copied',
  'common.back': 'Back',
  'state.pending_dns': 'Waiting for DNS',
  'state.verifying': 'Verifying',
  'state.verification_failed': 'Verification failed',
  'state.expired': 'Expired',
  'state.provisioning': 'Setting up',
  'state.ready': 'Ready to activate',
  'state.active': 'Active',
  'state.deleting': 'Deleting',
  'step.done': 'Done',
  'step.pending': 'Pending',
  'step.failed': 'Failed',
  'step.skipped': 'Skipped',
  'step.dns': 'Domain DNS',
  'step.ownership': 'Ownership (TXT)',
  'step.cloudflare': 'Cloudflare record',
  'step.custom_hostname': 'Certificate (Cloudflare for SaaS)',
  'step.tunnel_ingress': 'Tunnel route',
  'domains.title': 'Domains',
  'domains.add': 'Add domain',
  'domains.searchLabel': 'Search by name',
  'domains.empty': 'No domains yet.',
  'domains.noMatch': 'No domain matches the search.',
  'domains.col.hostname': 'Domain',
  'domains.col.platform': 'Platform subdomain',
  'domains.col.state': 'State',
  'domains.col.customer': 'Customer',
  'domains.col.primary': 'Primary',
  'domains.open': 'Open {host}',
  'add.title': 'Add domain',
  'add.hostname': 'Domain name',
  'add.hostnameHelp': 'For example www.your-company.com',
  'add.customer': 'Customer (id)',
  'add.deployment': 'Tenant deployment (id, optional)',
  'add.submit': 'Add',
  'add.busy': 'Adding…',
  'add.useSuggestion': 'Use {value}',
  'add.claimTitle': 'To claim it, publish this record:',
  'add.claim': 'Claim the domain',
  'wizard.title': 'Set up {host}',
  'wizard.records': 'DNS records to create',
  'wizard.col.type': 'Type',
  'wizard.col.name': 'Name',
  'wizard.col.value': 'Value',
  'wizard.col.note': 'Note',
  'wizard.required': 'required',
  'wizard.optional': 'optional',
  'wizard.apex': '{host} is the root domain: many providers allow no CNAME there. Use an ALIAS/ANAME record or “CNAME flattening”, and publish the TXT record too.',
  'wizard.steps': 'Steps',
  'wizard.evidence': 'Last check',
  'wizard.noCheck': 'The DNS has not been checked yet.',
  'wizard.checkedAt': 'Checked {when}',
  'wizard.resolver': 'Resolver',
  'wizard.resolvesTo': 'Currently resolves to',
  'wizard.nothing': 'nothing (does not exist)',
  'wizard.ok': 'correct',
  'wizard.warnings': 'Warnings',
  'action.verify': 'Verify',
  'action.verifying': 'Verifying…',
  'action.activate': 'Activate',
  'action.delete': 'Delete',
  'delete.title': 'Delete {host}',
  'delete.explain': 'The domain will stop being routed. Type {host} to confirm.',
  'delete.confirmLabel': 'Domain name',
  'delete.submit': 'Delete for good',
  'verify.ok': 'Verified',
  'detail.notFound': 'Domain not found.',
  'detail.customer': 'Customer {id}',
  'detail.primary': 'Primary domain',
  'dashboard.title': 'Dashboard',
  'dashboard.total': 'Domains in total',
  'dashboard.pending': 'Pending verification',
  'dashboard.active': 'Active',
  'dashboard.inactive': 'Inactive',
  'dashboard.errors': 'Configuration errors',
  'dashboard.deleting': 'Being deleted',
  'customers.title': 'Customers',
  'customers.col.company': 'Company',
  'customers.col.email': 'Email',
  'customers.col.plan': 'Plan',
  'customers.col.domains': 'Domains',
  'customers.empty': 'No customers.',
  'customer.tabs': 'Customer sections',
  'customer.tab.domains': 'Domains',
  'customer.tab.summary': 'Summary',
  'customer.primary': 'Primary platform subdomain',
  'customer.noPrimary': 'none yet',
  'customer.quota': '{used} of {quota} domains',
  'tunnels.title': 'Tunnels and agents',
  'tunnels.empty': 'No agents enrolled.',
  'tunnels.col.agent': 'Agent',
  'tunnels.col.tunnel': 'Tunnel',
  'tunnels.col.connected': 'Connection',
  'tunnels.col.version': 'Applied / desired version',
  'tunnels.col.error': 'Last error',
  'tunnels.col.seen': 'Last report',
  'tunnels.connected': 'Connected',
  'tunnels.disconnected': 'Disconnected',
  'tunnels.inSync': 'in sync',
  'tunnels.behind': 'behind',
  'tunnels.stage': 'stage {stage}',
  'tunnels.never': 'never',
  'tunnels.revoked': 'revoked',
  'diag.title': 'Diagnostics',
  'diag.intro': 'Why doesn’t my domain work? The whole path is checked: DNS, Cloudflare, the tunnel and the backend as seen from each tunnel host.',
  'diag.run': 'Diagnose',
  'diag.again': 'Diagnose again',
  'diag.running': 'Diagnosing…',
  'diag.loading': 'Checking DNS, Cloudflare, the tunnel and the backend; this may take a few seconds.',
  'diag.checkedAt': 'Checked {when} in {duration}',
  'diag.parts': 'Parts checked',
  'diag.fix': 'What to do:',
  'diag.details': 'Details',
  'diag.detailsOf': 'of {part}',
  'diag.noDetails': 'No further details.',
  'diag.data': 'Technical data',
  'diag.verdict.ok': 'OK',
  'diag.verdict.warn': 'Warning',
  'diag.verdict.fail': 'Failing',
  'diag.verdict.unknown': 'Not checked',
  'diag.retryAt': 'You can try again {when} (at {time}).',
  'diag.error': 'The domain could not be diagnosed: {detail}',
  'error.generic': 'Something failed: {detail}',
  'error.network': 'The server could not be reached.',
  'error.session': 'Your session ended. Sign in again.',
};

export type Locale = 'es' | 'en';
const dictionaries: Record<Locale, Record<Key, string>> = { es, en };
const STORAGE_KEY = 'sajet.locale';

function initial(): Locale {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'es' || saved === 'en') return saved;
  } catch {
    // storage disabled: the default
  }
  return 'es';
}

export const i18n = $state({ locale: initial() as Locale });

/** setLocale switches the language and remembers it (only the choice is stored). */
export function setLocale(l: Locale) {
  i18n.locale = l;
  document.documentElement.lang = l;
  try {
    localStorage.setItem(STORAGE_KEY, l);
  } catch {
    // not remembered
  }
}

/** t returns the UI's words for key in the current language; {name} placeholders come from vars. */
export function t(key: Key, vars?: Record<string, string | number>): string {
  const s = dictionaries[i18n.locale][key] ?? `⟦${key}⟧`;
  if (!vars) return s;
  return s.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

/** isKey tells whether a string names a dictionary entry (for keys built from API codes). */
export function isKey(k: string): k is Key {
  return k in es;
}

export function formatNumber(n: number): string {
  return new Intl.NumberFormat(i18n.locale).format(n);
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Intl.DateTimeFormat(i18n.locale, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

/** formatDuration says how long something took (milliseconds, or seconds from 1 s up). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return new Intl.NumberFormat(i18n.locale, { style: 'unit', unit: 'millisecond', unitDisplay: 'short' }).format(ms);
  return new Intl.NumberFormat(i18n.locale, { style: 'unit', unit: 'second', unitDisplay: 'short', maximumFractionDigits: 1 }).format(ms / 1000);
}

/** formatIn says when, relative to now, something happens ("en 8 segundos", "in 8 seconds"). */
export function formatIn(seconds: number): string {
  return new Intl.RelativeTimeFormat(i18n.locale, { numeric: 'auto' }).format(Math.max(1, Math.round(seconds)), 'second');
}

/** formatTime is a time of day (hours, minutes and seconds). */
export function formatTime(d: Date): string {
  return new Intl.DateTimeFormat(i18n.locale, { timeStyle: 'medium' }).format(d);
}

/** keysOf lists every key, for the tests that look for a missing translation. */
export const allKeys = Object.keys(es) as Key[];
