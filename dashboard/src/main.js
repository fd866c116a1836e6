// The dashboard's flag wiring: OpenFeature web SDK + OFREP web provider against the edge worker
// that serves this page. Identity is a signed demo token (minted by `publisher token` at build
// time, never here: the page does not hold the signing secret), sent as a Bearer header.

import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import {
  renderAccounts,
  renderChart,
  renderDebugPanel,
  renderFlagTable,
  renderKpis,
  renderLiveUpdates,
  renderToggle,
} from './view.js';

/**
 * How often the provider re-asks the edge (ms) when no event stream is up. The edge offers one
 * (OFREP `eventStreams`): the provider then stops polling and refetches only when the stream
 * says a new version is out, tens of milliseconds after a publish. If the stream is refused or
 * fails for good, the provider polls again at this interval; a cut stream reconnects within
 * the edge's retry hint (<= 250 ms) and is told at once what it missed. Each poll is a bulk
 * OFREP request with If-None-Match (an unchanged answer is a bodiless 304). Override with
 * `?poll=MS` (minimum 100).
 */
const POLL_MS = Math.max(100, Number(new URLSearchParams(location.search).get('poll')) || 250);

/** `widget-config`'s safe default (its `compact` variant), used when the edge gives nothing. */
const WIDGET_DEFAULT = { title: 'Top accounts', limit: 5 };
const USER_STORAGE_KEY = 'dashboard-demo-user';

const $ = (id) => document.getElementById(id);
const client = OpenFeature.getClient();
let users = [];
let currentUser;
let provider;
let lastRequest;

/** Keeps a malformed `widget-config` value from breaking the page: bad parts fall back. */
function widgetConfig(value) {
  const title = typeof value?.title === 'string' && value.title.trim() ? value.title.slice(0, 60) : WIDGET_DEFAULT.title;
  const limit = Number.isInteger(value?.limit) && value.limit >= 1 ? Math.min(value.limit, 10) : WIDGET_DEFAULT.limit;
  return { title, limit, showTrend: value?.showTrend === true };
}

// Every default below is the flag's safe default: what the page shows if the edge is unreachable.
function render() {
  renderChart($('chart'), $('chart-badge'), client.getBooleanValue('new-chart', false));
  renderLiveUpdates($('live-pill'), client.getBooleanValue('live-updates', false));
  const widget = widgetConfig(client.getObjectValue('widget-config', WIDGET_DEFAULT));
  renderAccounts($('accounts-widget'), $('accounts-title'), $('accounts'), widget);
  renderToggle($('beta-banner'), client.getBooleanValue('beta-banner', false));
  renderToggle($('export-button'), client.getBooleanValue('premium-export', false));
  renderToggle($('debug-panel'), client.getBooleanValue('internal-debug-panel', false));
  renderDebugPanel($('debug-list'), lastRequest);
  renderFlagTable($('flags-body'), provider?.flagCache ?? {});
  $('flags-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.user = currentUser?.sub ?? '';
  document.body.dataset.renders = String(Number(document.body.dataset.renders ?? 0) + 1);
}

/** Shows whether the last request to the edge worked; every poll reports here, 304s included. */
function setEdgeStatus(state, text) {
  document.body.dataset.flagsState = state;
  $('edge-status-text').textContent = text;
}

/**
 * The live indicator. The OFREP web provider (0.4.3) opens the stream itself but exposes no
 * connection state, so the page observes the EventSource the provider constructs: a subclass
 * that only listens to `open`/`error` on it. No events are read or acted on here.
 */
const stream = { state: 'none' };
function showStream(state) {
  stream.state = state;
  document.body.dataset.stream = state;
  if (document.body.dataset.flagsState === 'ready') setEdgeStatus('ready', edgeLiveText());
}
function edgeLiveText() {
  if (stream.state === 'live') return 'edge live · streaming changes';
  if (stream.state === 'reconnecting') return 'edge live · stream reconnecting';
  return `edge live · polling every ${POLL_MS} ms`;
}
if (typeof window.EventSource === 'function') {
  const NativeEventSource = window.EventSource;
  window.EventSource = class ObservedEventSource extends NativeEventSource {
    constructor(url, options) {
      super(url, options);
      this.addEventListener('open', () => showStream('live'));
      this.addEventListener('error', () => showStream(this.readyState === NativeEventSource.CLOSED ? 'polling' : 'reconnecting'));
    }
  };
}

function observedFetch(input, init) {
  const started = performance.now();
  return fetch(input, init).then(
    (response) => {
      const count = (lastRequest?.count ?? 0) + 1;
      const url = String(input?.url ?? input);
      lastRequest = {
        status: response.status,
        ms: performance.now() - started,
        etag: response.headers.get('etag'),
        count,
        trigger: url.includes('flagConfigEtag=') ? 'stream' : 'poll',
      };
      renderDebugPanel($('debug-list'), lastRequest);
      if (response.ok || response.status === 304) setEdgeStatus('ready', edgeLiveText());
      else if (response.status === 401) setEdgeStatus('error', 'edge rejected the demo token');
      else setEdgeStatus('stale', `edge answered ${response.status} · showing last values`);
      return response;
    },
    (error) => {
      setEdgeStatus('stale', 'edge unreachable · showing last values');
      throw error;
    },
  );
}

function fillUserSelect() {
  const select = $('user-select');
  select.replaceChildren(
    ...users.map((user) => {
      const option = new Option(`${user.name} — ${user.role}`, user.sub);
      option.selected = user === currentUser;
      return option;
    }),
  );
  select.addEventListener('change', () => switchUser(select.value));
}

async function switchUser(sub) {
  currentUser = users.find((user) => user.sub === sub) ?? users[0];
  localStorage.setItem(USER_STORAGE_KEY, currentUser.sub);
  document.body.dataset.user = '';
  // The provider re-fetches on a new targeting key; its headers factory then sends the new token.
  await OpenFeature.setContext({ targetingKey: currentUser.sub });
  render();
}

async function loadUsers() {
  const response = await fetch('/demo-users.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`/demo-users.json: HTTP ${response.status}`);
  return response.json();
}

async function main() {
  renderKpis($('kpis'));
  try {
    users = await loadUsers();
  } catch (error) {
    setEdgeStatus('error', 'no demo users: build the page with IDENTITY_SECRET set');
    console.error(error);
    render();
    return;
  }
  const wanted = new URLSearchParams(location.search).get('user') ?? localStorage.getItem(USER_STORAGE_KEY);
  currentUser = users.find((user) => user.sub === wanted) ?? users[0];
  fillUserSelect();

  provider = new OFREPWebProvider({
    baseUrl: location.origin,
    pollInterval: POLL_MS,
    // Always ask the edge: a persisted cache would show values from before a kill.
    cacheMode: 'disabled',
    fetchImplementation: observedFetch,
    headersFactory: () => [['Authorization', `Bearer ${currentUser.token}`]],
  });
  for (const event of [ProviderEvents.Ready, ProviderEvents.ConfigurationChanged, ProviderEvents.Stale, ProviderEvents.Error]) {
    client.addHandler(event, render);
  }
  try {
    await OpenFeature.setProviderAndWait(provider, { targetingKey: currentUser.sub });
  } catch (error) {
    // Evaluations fall back to the defaults in the code (old chart, no banner): the safe side.
    console.error('flag provider failed to start', error);
  }
  render();
}

main();
