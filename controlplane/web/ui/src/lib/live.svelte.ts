// Live updates from GET /api/events (server-sent events; the session cookie authenticates it).
// Pages subscribe to what they show; on (re)connection everything is re-read, since events sent
// while disconnected are lost.
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
  const all = (f: (h: LiveHandlers) => void) => subs.forEach(f);
  const open = () => {
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
  open();
  return {
    get connected() {
      return state.connected;
    },
    subscribe(h) {
      subs.add(h);
      return () => subs.delete(h);
    },
    close() {
      es?.close();
      state.connected = false;
    },
  };
}
