// Browser side of the wallet page test: drives the contributor page in Debian's headless Chromium
// (playwright-core, pinned in package.json) through an injected EIP-1193 provider.
//
// The provider is a test wallet: it contains one private key (ethers, pinned), signs sign-in
// messages and transactions itself, and forwards every other JSON-RPC request to anvil. Like
// common browser wallets it returns the account in lower case, so the page must checksum it.
//
// Input, from the environment:
//   LEDGER_BASE_URL      the API and page, e.g. http://127.0.0.1:8123
//   LEDGER_RPC_URL       anvil, e.g. http://127.0.0.1:8545
//   TEST_WALLET_KEY      0x-prefixed private key of the test wallet (never printed)
//   DELETE_SESSION_ID    session the test deletes through the page
//   ARTIFACTS_DIR        folder for the screenshots
//   CHROMIUM_PATH        browser binary (default /usr/bin/chromium)
// Output: one JSON object on stdout with what the page showed and what the wallet was asked.
// Any failed step exits with status 1 and the reason, plus the page's console, on stderr.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ethers } from 'ethers';
import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 60_000;
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`missing environment variable ${name}`);
  }
  return value;
}

const baseUrl = required('LEDGER_BASE_URL');
const rpcUrl = required('LEDGER_RPC_URL');
const deleteSessionId = required('DELETE_SESSION_ID');
const artifactsDir = required('ARTIFACTS_DIR');
const rpc = new ethers.JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true, polling: false });
const wallet = new ethers.Wallet(required('TEST_WALLET_KEY'), rpc);
const walletRequests = [];
const pageConsole = [];

/** A JSON-RPC error in the shape EIP-1193 gives providers: a number code and a message. */
function providerError(code, message) {
  return { error: { code, message } };
}

async function handleWalletRequest({ method, params = [] }) {
  walletRequests.push(method);
  const account = wallet.address.toLowerCase();
  switch (method) {
    case 'eth_requestAccounts':
    case 'eth_accounts':
      return { result: [account] };
    case 'personal_sign': {
      const [messageHex, from] = params;
      if (from.toLowerCase() !== account) {
        return providerError(4100, `personal_sign for ${from}, but the wallet contains ${account}`);
      }
      return { result: await wallet.signMessage(ethers.getBytes(messageHex)) };
    }
    case 'eth_sendTransaction': {
      const [request] = params;
      if (request.from.toLowerCase() !== account) {
        return providerError(4100, `eth_sendTransaction from ${request.from}, but the wallet contains ${account}`);
      }
      const sent = await wallet.sendTransaction({ to: request.to, data: request.data, value: request.value ?? 0 });
      return { result: sent.hash };
    }
    case 'wallet_switchEthereumChain': {
      const chainId = await rpc.send('eth_chainId', []);
      if (BigInt(params[0].chainId) !== BigInt(chainId)) {
        return providerError(4902, `the test wallet only knows chain ${BigInt(chainId)}`);
      }
      return { result: null };
    }
    default:
      try {
        return { result: await rpc.send(method, params) };
      } catch (error) {
        return providerError(error.error?.code ?? -32603, error.shortMessage ?? error.message);
      }
  }
}

// Runs in the page before its own scripts: the EIP-1193 surface a wallet extension injects.
function installProvider() {
  const listeners = new Map();
  window.ethereum = {
    async request(args) {
      const outcome = await window.__testWalletRequest(args);
      if (outcome.error) {
        const error = new Error(outcome.error.message);
        error.code = outcome.error.code;
        throw error;
      }
      return outcome.result;
    },
    on(event, listener) {
      if (!listeners.has(event)) {
        listeners.set(event, new Set());
      }
      listeners.get(event).add(listener);
      return this;
    },
    removeListener(event, listener) {
      listeners.get(event)?.delete(listener);
      return this;
    },
  };
}

/**
 * Wait until the text of `selector` matches `matcher` ({startsWith}, {equals}, {notEquals} or
 * {pattern}, a regular expression source) and return it. Fails as soon as the page shows an error.
 */
async function waitForText(page, selector, matcher, step) {
  const handle = await page.waitForFunction(
    ([target, expected]) => {
      const error = document.querySelector('#error');
      if (error && !error.hidden && error.textContent) {
        return { error: error.textContent };
      }
      const text = document.querySelector(target)?.textContent ?? null;
      if (text === null) {
        return null;
      }
      const matches =
        ('startsWith' in expected && text.startsWith(expected.startsWith)) ||
        ('equals' in expected && text === expected.equals) ||
        ('notEquals' in expected && text !== expected.notEquals) ||
        ('pattern' in expected && new RegExp(expected.pattern).test(text));
      return matches ? { text } : null;
    },
    [selector, matcher],
    { timeout: STEP_TIMEOUT_MS },
  );
  const outcome = await handle.jsonValue();
  if (outcome.error) {
    throw new Error(`${step}: the page showed the error "${outcome.error}"`);
  }
  return outcome.text;
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(artifactsDir, `wallet-page-${name}.png`), fullPage: true });
}

async function main() {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'ledger-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1200, height: 1000 },
  });
  try {
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    await context.exposeFunction('__testWalletRequest', handleWalletRequest);
    await context.addInitScript(installProvider);
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (message) => pageConsole.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => pageConsole.push(`pageerror: ${error.message}`));
    page.on('dialog', (dialog) => dialog.accept());

    await page.goto(`${baseUrl}/`);
    await page.click('#connect');
    const claimableBefore = await waitForText(page, '#claimable-amount', { notEquals: '-' }, 'connect');
    const walletState = await page.textContent('#wallet-state');
    await screenshot(page, '1-connected');

    await page.click('#sign-in');
    await waitForText(page, '#status', { startsWith: 'Signed in' }, 'sign in');
    const sessionsRange = await waitForText(page, '#sessions-range', { pattern: 'of [1-9]' }, 'list sessions');
    await waitForText(page, '#sharing-state', { startsWith: 'Sharing is on' }, 'read sharing');
    await screenshot(page, '2-signed-in');

    await page.click('#sharing-toggle');
    const pausedText = await waitForText(page, '#sharing-state', { startsWith: 'Sharing is paused' }, 'pause sharing');
    await page.click('#sharing-toggle');
    await waitForText(page, '#sharing-state', { startsWith: 'Sharing is on' }, 'resume sharing');

    await page.click(`#sessions-table tr[data-session-id="${deleteSessionId}"] button`);
    await waitForText(page, '#status', { equals: `Session ${deleteSessionId} deleted.` }, 'delete session');
    const deletedRow = await page.textContent(`#sessions-table tr[data-session-id="${deleteSessionId}"]`);
    await screenshot(page, '3-session-deleted');

    await page.click('#claim');
    const claimStatus = await waitForText(page, '#status', { startsWith: 'Claimed ' }, 'claim');
    const walletBalance = await page.getAttribute('#wallet-balance', 'title');
    const claimableAfter = await page.getAttribute('#claimable-amount', 'title');
    await screenshot(page, '4-claimed');

    await page.click('#sign-out');
    await waitForText(page, '#status', { equals: 'Signed out.' }, 'sign out');
    const sessionsHidden = await page.isHidden('#sessions');

    const result = {
      address: wallet.address,
      walletState,
      claimableBefore,
      sessionsRange,
      pausedText,
      deletedRow,
      claimStatus,
      claimTransaction: claimStatus.match(/transaction (0x[0-9a-f]{64})/)?.[1] ?? null,
      walletBalance,
      claimableAfter,
      sessionsHidden,
      walletRequests,
      pageConsole,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`wallet page test failed: ${error.stack ?? error}\n`);
  process.stderr.write(`page console:\n${pageConsole.join('\n')}\nwallet requests: ${walletRequests.join(', ')}\n`);
  process.exit(1);
});
