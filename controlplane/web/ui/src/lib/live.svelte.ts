// Live updates from GET /api/events (server-sent events; the session cookie authenticates it).
// Pages subscribe to what they show; on (re)connection everything is re-read, since events sent
// while disconnected are lost.
//
// The stream is open only while the tab is visible: over HTTP/1.1 a browser keeps at most six
// connections per server, and a stream holds one for as long as it is open, so streams of tabs in
// the background (or of pages kept in the back-forward cache) would leave none for the API's
// requests. A tab that comes back re-reads what it shows.
export interface LiveHandlers {
  domains?: (ids: number[]) => void;
  agents?: () => void;
  resync?: () => void;
}

export interface Live {
  readonly connected: boolean;
  subscribe(h: LiveHandlers): () => void;
  close(): void;
}

export function connectLive(url = '/api/events'): Live {
  const subs = new Set<LiveHandlers>();
  const state = $state({ connected: false });
  let es: EventSource | undefined;
  let opened = false;
  let stopped = false;
  const all = (f: (h: LiveHandlers) => void) => subs.forEach(f);
  const open = () => {
    if (stopped) return;
    es = new EventSource(url, { withCredentials: true });
    es.addEventListener('open', () => {
      state.connected = true;
      if (opened) all((h) => h.resync?.());
      opened = true;
    });
    es.addEventListener('error', () => {
      state.connected = false;
    });
    es.addEventListener('domains', (e) => {
      const ids = (JSON.parse((e as MessageEvent).data).ids ?? []) as number[];
      all((h) => h.domains?.(ids));
    });
    es.addEventListener('agents', () => all((h) => h.agents?.()));
    es.addEventListener('resync', () => all((h) => h.resync?.()));
  };
  const close = () => {
    es?.close();
    es = undefined;
    state.connected = false;
  };
  const onVisibility = () => {
    if (document.visibilityState === 'hidden') close();
    else if (!es) open();
  };
  document.addEventListener('visibilitychange', onVisibility);
  addEventListener('pagehide', close);
  addEventListener('pageshow', (e) => {
    if (e.persisted && !es) open();
  });
  if (document.visibilityState !== 'hidden') open();
  return {
    get connected() {
      return state.connected;
    },
    subscribe(h) {
      subs.add(h);
      return () => subs.delete(h);
    },
    close() {
      stopped = true;
      document.removeEventListener('visibilitychange', onVisibility);
      removeEventListener('pagehide', close);
      close();
    },
  };
}
