// Drives Debian's headless chromium through the demo shop (tests/integration/test_shop.sh
// starts the broker and the worker): open a product, add it to the cart, check that the
// widget shows the list the API returns for that shopper, check out, buy, check the
// post-purchase list. A screenshot of each step goes to OUT.
//   node shop_test.mjs BASE_URL TOKEN OUT_DIR ITEM_ID
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';

const [base, token, out, item] = process.argv.slice(2);
if (!base || !token || !out || !item) {
  console.error('usage: node shop_test.mjs BASE_URL TOKEN OUT_DIR ITEM_ID');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const user = 'web-test-' + Date.now().toString(36);

async function apiList(placement, it) {
  let path = `${base}/v1/users/${encodeURIComponent(user)}/cross-sell?placement=${placement}`;
  if (it) path += `&item=${encodeURIComponent(it)}`;
  const r = await fetch(path);
  assert.equal(r.status, 200);
  return r.json();
}

// Waits for a fresh widget (the worker has read the shopper's latest event) and
// returns what it shows.
async function widget(page, id) {
  const el = page.locator(`#${id}[data-fresh="1"]`);
  await el.waitFor({ timeout: 15000 });
  const items = (await el.getAttribute('data-items')).split(',').filter(Boolean);
  const arm = await el.getAttribute('data-arm');
  const cards = await el.locator('.card').count();
  assert.equal(cards, items.length, `${id}: one card per item`);
  return { items, arm };
}

async function sameAsApi(page, id, placement, it) {
  const w = await widget(page, id);
  const api = await apiList(placement, it);
  assert.deepEqual(w.items, api.items.map((i) => i.item_id), `${id}: the widget shows the API's ${placement} list`);
  assert.equal(w.arm, api.arm || '', `${id}: the arm of the API's list`);
  assert.ok(api.known_user, `${id}: the worker knows the shopper from the shop's events`);
  return { w, api };
}

const browser = await chromium.launch({
  executablePath: process.env.XS_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('pageerror', (e) => { console.error('page error:', e.message); failed = true; });

  // 1. A product page: the view goes to xsell, "frequently bought together" follows.
  await page.goto(`${base}/shop/?token=${encodeURIComponent(token)}&user=${user}#/product/${encodeURIComponent(item)}`);
  const fbt = await sameAsApi(page, 'fbt', 'PRODUCT_PAGE', item);
  assert.ok(fbt.w.items.length > 0, 'product page: a non-empty list');
  assert.ok(!fbt.w.items.includes(item), 'product page: not the product itself');
  assert.equal(fbt.api.items[0].source, 'BOUGHT_TOGETHER', 'product page: complements first');
  assert.ok(fbt.api.items[0].title, 'items carry their titles');
  await page.screenshot({ path: `${out}/1-product.png`, fullPage: true });
  console.log(`product ${item}: ${fbt.w.items.join(' ')} (arm ${fbt.w.arm || 'none'})`);

  // 2. Add to cart: the cart page and "complete your purchase".
  await page.click('#add-to-cart');
  await page.waitForURL(/#\/cart$/);
  const cart = await sameAsApi(page, 'complete', 'CART');
  assert.ok(cart.w.items.length > 0, 'cart: a non-empty list');
  assert.ok(!cart.w.items.includes(item), 'cart: nothing in the cart is suggested');
  await page.screenshot({ path: `${out}/2-cart.png`, fullPage: true });
  console.log(`cart: ${cart.w.items.join(' ')}`);

  // 3. Checkout.
  await page.click('#checkout');
  await page.waitForURL(/#\/checkout$/);
  const co = await sameAsApi(page, 'before-you-pay', 'CHECKOUT');
  assert.ok(!co.w.items.includes(item), 'checkout: nothing in the cart is suggested');
  await page.screenshot({ path: `${out}/3-checkout.png`, fullPage: true });

  // 4. Buy: the post-purchase e-mail preview.
  await page.click('#buy');
  await page.waitForURL(/#\/email$/);
  const pp = await sameAsApi(page, 'post-purchase', 'POST_PURCHASE');
  assert.ok(pp.w.items.length > 0, 'post-purchase: a non-empty list');
  assert.ok(!pp.w.items.includes(item), 'post-purchase: not what was just bought');
  assert.equal(await page.locator('#cart-count').textContent(), '0', 'the cart is empty after the purchase');
  await page.screenshot({ path: `${out}/4-email.png`, fullPage: true });
  console.log(`post-purchase: ${pp.w.items.join(' ')}`);
} catch (e) {
  console.error(e);
  failed = true;
} finally {
  await browser.close();
}
if (failed) process.exit(1);
console.log(`shop test passed; screenshots in ${out}`);
