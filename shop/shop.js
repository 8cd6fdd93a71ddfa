// The demo shop: a single page over the worker's HTTP API.
//   events in:  POST /v1/events (bearer token from ?token=, kept for the tab)
//   lists out:  GET /v1/users/{user}/cross-sell?placement=...&item=...
// After each event the widgets poll the list until the worker has read the
// event (the list's generated_at, the shopper's latest event time, has
// reached the event's ts), then show it with the experiment arm and why each
// item is there. Widgets carry data-items / data-arm / data-fresh for tests.
'use strict';

const params = new URLSearchParams(location.search);
if (params.get('token')) sessionStorage.setItem('xsell.token', params.get('token'));
if (params.get('user')) localStorage.setItem('xsell.user', params.get('user'));
const token = sessionStorage.getItem('xsell.token') || '';
let user = localStorage.getItem('xsell.user');
if (!user) {
  user = 'web-' + Math.random().toString(36).slice(2, 10);
  localStorage.setItem('xsell.user', user);
}
const titles = new Map(); // item id -> title, from every list and item seen
let seq = 0;

function load(key, dflt) {
  try { return JSON.parse(localStorage.getItem(key + '.' + user)) ?? dflt; } catch { return dflt; }
}
function save(key, v) { localStorage.setItem(key + '.' + user, JSON.stringify(v)); }
let cart = load('xsell.cart', []);

const $ = (sel) => document.querySelector(sel);
function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
function money(p) { return p == null ? 'price on request' : '£' + Number(p).toFixed(2); }
function name(id) { return (titles.get(id) || id).toLowerCase(); }
function thumb(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `<div class="thumb" style="background:hsl(${h % 360},45%,52%)">${esc(id.slice(0, 5))}</div>`;
}

async function api(path) {
  const r = await fetch(path, { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.status);
  return body;
}

// Sends events (kind, type, ...); returns the ts they carry.
async function send(events) {
  const ts = Math.max(Date.now(), Number(sessionStorage.getItem('xsell.ts.' + user) || 0) + 1);
  const batch = events.map((e) => ({ event_id: `${user}-${ts}-${++seq}`, user_id: user, ts, ...e }));
  if (!token) {
    $('#status').textContent = 'read-only: open the address `make demo-serve` printed (with ?token=) to send events';
    return 0;
  }
  const r = await fetch('/v1/events', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
    body: JSON.stringify({ events: batch }),
  });
  const body = await r.json();
  if (r.status !== 202) throw new Error(`POST /v1/events: ${r.status} ${body.error || ''}`);
  sessionStorage.setItem('xsell.ts.' + user, String(ts));
  $('#status').textContent = `${batch.length} event(s) accepted at ${new Date(ts).toLocaleTimeString()}`;
  return ts;
}

function listPath(placement, item, n) {
  let p = `/v1/users/${encodeURIComponent(user)}/cross-sell?placement=${placement}`;
  if (item) p += `&item=${encodeURIComponent(item)}`;
  if (n) p += `&n=${n}`;
  return p;
}

// The list once the worker has read events up to `since` (at most 5 s).
async function freshList(placement, item, since) {
  const t0 = performance.now();
  for (;;) {
    const list = await api(listPath(placement, item));
    const fresh = !since || list.generated_at >= since;
    if (fresh || performance.now() - t0 > 5000) return { list, fresh, ms: Math.round(performance.now() - t0) };
    await new Promise((res) => setTimeout(res, 50));
  }
}

function why(it) {
  const names = (it.because_of || []).map((b) => `“${esc(name(b))}”`).join(', ');
  switch (it.source) {
    case 'BOUGHT_TOGETHER': return `bought together with ${names}`;
    case 'VIEWED_TOGETHER': return `viewed together with ${names}`;
    case 'PERSONAL': return 'from your history';
    default: return 'popular right now';
  }
}

function widget(id, heading, { list, fresh, ms }, placement, opts = {}) {
  for (const it of list.items) if (it.title) titles.set(it.item_id, it.title);
  const arm = list.arm ? `experiment ${esc(list.experiment)}, arm <b>${esc(list.arm)}</b>` : 'no experiment';
  const cards = list.items.map((it) => `
      <div class="card" data-item="${esc(it.item_id)}">
        <a href="#/product/${encodeURIComponent(it.item_id)}">${thumb(it.item_id)}</a>
        <a class="title" href="#/product/${encodeURIComponent(it.item_id)}">${esc(name(it.item_id))}</a>
        <div class="price">${money(it.price)}</div>
        <div class="why"><span class="src ${esc(it.source)}">${esc(it.source.replace('_', ' ').toLowerCase())}</span>${why(it)}</div>
        ${opts.add ? `<button class="small" data-add="${esc(it.item_id)}">Add to cart</button>` : ''}
      </div>`).join('');
  return `
    <section class="widget" id="${id}" data-widget="${placement}" data-placement="${placement}"
             data-items="${esc(list.items.map((i) => i.item_id).join(','))}" data-arm="${esc(list.arm || '')}"
             data-fresh="${fresh ? 1 : 0}">
      <header><h2>${heading}</h2><span class="arm">${arm}</span></header>
      ${list.items.length ? `<div class="grid">${cards}</div>` : '<p class="muted">nothing to suggest yet</p>'}
      <p class="muted">${placement} list for ${esc(user)}, ${fresh ? `fresh after ${ms} ms` : 'not yet updated with your last click'}
        ${list.known_user ? '' : '(a new shopper: best-sellers)'}</p>
    </section>`;
}

function bindAdds() {
  for (const b of document.querySelectorAll('[data-add]')) {
    b.onclick = async () => { await addToCart(b.dataset.add); location.hash = '#/cart'; route(); };
  }
}

async function addToCart(id) {
  let info = null;
  try { info = await api(`/v1/items/${encodeURIComponent(id)}/neighbours?n=1`); } catch { /* unknown item */ }
  const price = info ? info.price : null;
  if (info && info.title) titles.set(id, info.title);
  const line = { item_id: id, quantity: 1 };
  if (price != null) line.unit_price = price;
  await send([{ kind: 'cart', type: 'ADD', lines: [line], currency: 'GBP' }]);
  const have = cart.find((l) => l.item_id === id);
  if (have) have.quantity += 1; else cart.push({ item_id: id, title: titles.get(id) || id, price, quantity: 1 });
  save('xsell.cart', cart);
}

function cartLines() {
  return cart.map((l) => {
    const line = { item_id: l.item_id, quantity: l.quantity };
    if (l.price != null) line.unit_price = l.price;
    return line;
  });
}
function total() { return cart.reduce((s, l) => s + (l.price || 0) * l.quantity, 0); }

async function home() {
  const res = await freshList('POST_PURCHASE', null, 0);
  const v = $('#view');
  v.innerHTML = `<h1>Welcome</h1><p class="muted">Open a product: every view, add and purchase goes to xsell as an event.</p>` +
    widget('home-list', res.list.known_user ? 'Picked for you' : 'Popular right now', res, 'POST_PURCHASE', { add: true });
  bindAdds();
}

async function product(id) {
  const v = $('#view');
  let info;
  try { info = await api(`/v1/items/${encodeURIComponent(id)}/neighbours?n=1`); } catch (e) {
    v.innerHTML = `<p class="notice">No such product: ${esc(id)}</p>`;
    return;
  }
  if (info.title) titles.set(id, info.title);
  const ev = { kind: 'click', type: 'PRODUCT_VIEW', item_id: id };
  if (info.category) ev.category = info.category;
  const ts = await send([ev]);
  v.innerHTML = `
    <div class="product" id="product" data-item="${esc(id)}">
      ${thumb(id)}
      <div>
        <div class="title">${esc(name(id))}</div>
        <p class="muted">Stock code ${esc(id)}${info.category ? ' · ' + esc(info.category) : ''} ·
          bought by ${info.users.bought} customers</p>
        <p class="price">${money(info.price)}</p>
        <div class="actions"><button id="add-to-cart">Add to cart</button>
          <a href="#/cart"><button class="secondary">Go to cart</button></a></div>
      </div>
    </div>
    <div id="fbt-slot"><p class="muted">asking xsell…</p></div>`;
  $('#add-to-cart').onclick = async () => { await addToCart(id); location.hash = '#/cart'; };
  const res = await freshList('PRODUCT_PAGE', id, ts);
  $('#fbt-slot').innerHTML = widget('fbt', 'Frequently bought together', res, 'PRODUCT_PAGE', { add: true });
  bindAdds();
}

function linesTable() {
  const rows = cart.map((l) => `<tr><td class="cap">${esc(name(l.item_id))}</td><td>${esc(l.item_id)}</td>
      <td class="num">${l.quantity}</td><td class="num">${money(l.price)}</td></tr>`).join('');
  return `<table class="lines"><tr><th>product</th><th>code</th><th class="num">qty</th><th class="num">price</th></tr>${rows}
      <tr><th colspan="3">total</th><th class="num">${money(total())}</th></tr></table>`;
}

async function cartPage() {
  const v = $('#view');
  if (!cart.length) {
    v.innerHTML = '<h1>Your cart is empty</h1><p><a href="#/">Browse the shop</a></p>';
    return;
  }
  const since = Number(sessionStorage.getItem('xsell.ts.' + user) || 0);
  v.innerHTML = `<h1>Your cart</h1>${linesTable()}
    <div class="actions"><button id="checkout">Checkout</button><a href="#/"><button class="secondary">Keep shopping</button></a></div>
    <div id="complete-slot"><p class="muted">asking xsell…</p></div>`;
  $('#checkout').onclick = async () => {
    await send([{ kind: 'cart', type: 'CHECKOUT', lines: cartLines(), currency: 'GBP' }]);
    location.hash = '#/checkout';
  };
  const res = await freshList('CART', null, since);
  $('#complete-slot').innerHTML = widget('complete', 'Complete your purchase', res, 'CART', { add: true });
  bindAdds();
}

async function checkout() {
  const v = $('#view');
  if (!cart.length) { location.hash = '#/cart'; return; }
  const since = Number(sessionStorage.getItem('xsell.ts.' + user) || 0);
  v.innerHTML = `<h1>Checkout</h1>${linesTable()}
    <div class="actions"><button id="buy">Place order</button></div>
    <div id="checkout-slot"><p class="muted">asking xsell…</p></div>`;
  $('#buy').onclick = async () => {
    const order = 'web-order-' + Date.now().toString(36);
    const ts = await send([{ kind: 'cart', type: 'PURCHASE', lines: cartLines(), order_id: order, currency: 'GBP' }]);
    save('xsell.order', { order, ts, lines: cart, total: total() });
    cart = [];
    save('xsell.cart', cart);
    location.hash = '#/email';
  };
  const res = await freshList('CHECKOUT', null, since);
  $('#checkout-slot').innerHTML = widget('before-you-pay', 'Before you pay', res, 'CHECKOUT', { add: true });
  bindAdds();
}

async function email() {
  const v = $('#view');
  const o = load('xsell.order', null);
  if (!o) { v.innerHTML = '<p>No order yet.</p>'; return; }
  const bought = o.lines.map((l) => `<li class="cap">${l.quantity} × ${esc(name(l.item_id))} (${esc(l.item_id)})</li>`).join('');
  v.innerHTML = `<h1>Post-purchase e-mail (preview)</h1>
    <div class="email">
      <div class="meta">To: customer ${esc(user)}<br>Subject: Thank you for your order ${esc(o.order)}</div>
      <div class="body"><p>Thank you! Your order of ${money(o.total)} is on its way:</p><ul>${bought}</ul>
        <div id="email-slot"><p class="muted">asking xsell…</p></div></div>
    </div>`;
  const res = await freshList('POST_PURCHASE', null, o.ts);
  $('#email-slot').innerHTML = widget('post-purchase', 'You might also like', res, 'POST_PURCHASE');
}

async function route() {
  $('#who').textContent = `shopper ${user}`;
  $('#cart-count').textContent = cart.reduce((s, l) => s + l.quantity, 0);
  const h = location.hash || '#/';
  try {
    if (h.startsWith('#/product/')) await product(decodeURIComponent(h.slice(10)));
    else if (h === '#/cart') await cartPage();
    else if (h === '#/checkout') await checkout();
    else if (h === '#/email') await email();
    else await home();
  } catch (e) {
    $('#view').innerHTML = `<p class="notice">${esc(e.message)}</p>`;
  }
  $('#cart-count').textContent = cart.reduce((s, l) => s + l.quantity, 0);
}

window.addEventListener('hashchange', route);
route();
