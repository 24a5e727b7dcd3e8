// The contributor page: connect an EIP-1193 wallet, sign in with Ethereum (EIP-4361), read
// earnings, claim tokens, review and delete sessions, pause or resume sharing.
//
// Every API call goes to this page's own origin. Chain reads and the claim transaction go
// through the wallet's provider, so the page needs no RPC endpoint of its own. The bearer token
// lives in memory only: reloading the page signs the contributor out.

import {
  encodeAddressWord,
  formatUnits,
  functionSelector,
  toChecksumAddress,
  utf8ToHex,
} from './eth.js';

const SESSIONS_PAGE_SIZE = 20;
const SIGN_IN_VALIDITY_MS = 10 * 60 * 1000;
const RECEIPT_POLL_INTERVAL_MS = 1000;
const RECEIPT_POLL_LIMIT = 300;

const state = {
  provider: null,
  account: null,
  walletChainId: null,
  token: null,
  sessionsOffset: 0,
  sessionsTotal: 0,
  sharing: null,
  entitled: 0n,
  claimed: null,
  busy: false,
};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const $ = (id) => document.getElementById(id);

// --- HTTP API --------------------------------------------------------------------------------

async function callApi(method, path, { body, auth = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  if (auth) {
    headers.Authorization = `Bearer ${state.token}`;
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const code = data?.error?.code ?? 'http_error';
    const message = data?.error?.message ?? `${method} ${path} failed with HTTP ${response.status}`;
    if (response.status === 401 && auth) {
      signOutLocally();
    }
    throw new ApiError(response.status, code, message);
  }
  return data;
}

// --- Feedback --------------------------------------------------------------------------------

function showStatus(text) {
  $('status').textContent = text;
}

function showError(error) {
  const box = $('error');
  if (!error) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.hidden = false;
  box.textContent = walletErrorText(error);
}

function walletErrorText(error) {
  // EIP-1193 code 4001: the user rejected the request in the wallet.
  if (error?.code === 4001) {
    return 'The request was rejected in the wallet.';
  }
  return error?.message ?? String(error);
}

/** Run an action with the buttons locked, showing its error instead of throwing it. */
async function run(action) {
  if (state.busy) {
    return;
  }
  state.busy = true;
  showError(null);
  render();
  try {
    await action();
  } catch (error) {
    showError(error);
  } finally {
    state.busy = false;
    render();
  }
}

function amountCell(element, baseUnits) {
  element.textContent = baseUnits === null || baseUnits === undefined ? '-' : formatUnits(baseUnits);
  element.title = baseUnits === null || baseUnits === undefined ? '' : `${baseUnits} base units`;
}

function render() {
  const connected = state.account !== null;
  const signedIn = state.token !== null;
  $('connect').disabled = state.busy;
  $('connect').textContent = connected ? 'Reconnect wallet' : 'Connect wallet';
  $('sign-in').disabled = state.busy || !connected || signedIn;
  $('sign-in').hidden = signedIn;
  $('sign-out').hidden = !signedIn;
  $('sign-out').disabled = state.busy;
  $('earnings').hidden = !connected;
  $('sessions').hidden = !signedIn;
  $('sharing').hidden = !signedIn;
  $('sharing-toggle').disabled = state.busy || state.sharing === null;
  $('sessions-prev').disabled = state.busy || state.sessionsOffset === 0;
  $('sessions-next').disabled = state.busy || state.sessionsOffset + SESSIONS_PAGE_SIZE >= state.sessionsTotal;
  for (const button of document.querySelectorAll('#sessions-table button')) {
    button.disabled = state.busy || button.dataset.withdrawn === 'true';
  }
  const claimable = $('claim').dataset.claimable ?? '0';
  $('claim').disabled = state.busy || !connected || BigInt(claimable) === 0n;

  if (!connected) {
    $('wallet-state').textContent = 'No wallet connected.';
  } else {
    const chain = state.walletChainId === null ? 'unknown chain' : `chain ${state.walletChainId}`;
    const role = signedIn ? 'signed in as' : 'connected:';
    $('wallet-state').textContent = `Wallet ${role} ${state.account} on ${chain}.`;
  }
}

// --- Wallet ----------------------------------------------------------------------------------

async function walletChainId() {
  const hex = await state.provider.request({ method: 'eth_chainId' });
  state.walletChainId = Number.parseInt(hex, 16);
  return state.walletChainId;
}

/** Ask the wallet to switch to `chainId` when it is on another chain. */
async function ensureChain(chainId) {
  if ((await walletChainId()) === chainId) {
    return;
  }
  try {
    await state.provider.request({
      method: 'wallet_switchEthereumChain',
      params: [{ chainId: '0x' + chainId.toString(16) }],
    });
  } catch (error) {
    throw new Error(
      `Your wallet is on chain ${state.walletChainId}, but this service settles on chain ${chainId}. ` +
        `Switch the wallet to chain ${chainId} and try again (${walletErrorText(error)})`,
    );
  }
  if ((await walletChainId()) !== chainId) {
    throw new Error(`The wallet did not switch to chain ${chainId}: switch it by hand and try again.`);
  }
}

function onAccountsChanged(accounts) {
  signOutLocally();
  state.account = accounts.length ? toChecksumAddress(accounts[0]) : null;
  render();
  if (state.account) {
    run(refreshEarnings);
  }
}

function onChainChanged(chainIdHex) {
  state.walletChainId = Number.parseInt(chainIdHex, 16);
  render();
  if (state.account) {
    run(refreshEarnings);
  }
}

async function connect() {
  const provider = window.ethereum;
  if (!provider || typeof provider.request !== 'function') {
    throw new Error('No Ethereum wallet found in this browser: install one (any EIP-1193 wallet) and reload.');
  }
  if (state.provider !== provider) {
    state.provider = provider;
    provider.on?.('accountsChanged', onAccountsChanged);
    provider.on?.('chainChanged', onChainChanged);
  }
  const accounts = await provider.request({ method: 'eth_requestAccounts' });
  if (!accounts?.length) {
    throw new Error('The wallet returned no account.');
  }
  const account = toChecksumAddress(accounts[0]);
  if (account !== state.account) {
    signOutLocally();
  }
  state.account = account;
  await walletChainId();
  render();
  showStatus('Wallet connected.');
  await refreshEarnings();
}

// --- Sign-in with Ethereum -------------------------------------------------------------------

function siweMessage({ domain, address, statement, uri, chainId, nonce, issuedAt, expiresAt }) {
  // EIP-4361 layout: no trailing line break, optional lines in the order the standard fixes.
  return [
    `${domain} wants you to sign in with your Ethereum account:`,
    address,
    '',
    statement,
    '',
    `URI: ${uri}`,
    'Version: 1',
    `Chain ID: ${chainId}`,
    `Nonce: ${nonce}`,
    `Issued At: ${issuedAt}`,
    `Expiration Time: ${expiresAt}`,
  ].join('\n');
}

async function signIn() {
  const nonce = await callApi('GET', '/v1/auth/nonce');
  if (nonce.domain !== window.location.host) {
    throw new Error(
      `This service accepts sign-in messages for ${nonce.domain}, but the page was opened at ` +
        `${window.location.host}. Open the page at ${nonce.domain} to sign in.`,
    );
  }
  const chainId = nonce.chain_id ?? (await walletChainId());
  await ensureChain(chainId);

  const issued = new Date();
  const message = siweMessage({
    domain: window.location.host,
    address: state.account,
    statement: nonce.statement,
    uri: window.location.origin + '/',
    chainId,
    nonce: nonce.nonce,
    issuedAt: issued.toISOString(),
    expiresAt: new Date(issued.getTime() + SIGN_IN_VALIDITY_MS).toISOString(),
  });
  showStatus('Confirm the sign-in message in your wallet.');
  const signature = await state.provider.request({
    method: 'personal_sign',
    params: [utf8ToHex(message), state.account],
  });
  const result = await callApi('POST', '/v1/auth/sign-in', { body: { message, signature } });
  if (result.address !== state.account) {
    throw new Error(`The service signed in ${result.address}, not the connected account ${state.account}.`);
  }
  state.token = result.token;
  state.sessionsOffset = 0;
  render();
  showStatus(`Signed in until ${new Date(result.expires_at).toLocaleTimeString()}.`);
  await Promise.all([refreshSessions(), refreshSharing()]);
}

function signOutLocally() {
  state.token = null;
  state.sharing = null;
  state.sessionsOffset = 0;
  state.sessionsTotal = 0;
  $('sessions-table').tBodies[0].replaceChildren();
}

async function signOut() {
  try {
    await callApi('POST', '/v1/auth/sign-out', { auth: true });
  } finally {
    signOutLocally();
  }
  showStatus('Signed out.');
}

// --- Earnings and claims ---------------------------------------------------------------------

async function refreshEarnings() {
  const body = $('epochs-table').tBodies[0];
  let earnings;
  try {
    earnings = await callApi('GET', `/v1/contributors/${state.account}/earnings`);
  } catch (error) {
    if (error.code !== 'contributor_not_found') {
      throw error;
    }
    earnings = null;
  }
  $('earnings-empty').hidden = earnings !== null;
  $('epochs-table').hidden = earnings === null;
  $('points-balance').textContent = earnings ? earnings.points_balance.toLocaleString('en-US') : '-';
  amountCell($('cumulative-amount'), earnings?.cumulative_amount);
  amountCell($('pending-amount'), earnings?.pending_amount);
  state.entitled = earnings ? BigInt(earnings.cumulative_amount) : 0n;
  showClaimed(earnings?.claimed ?? null);

  const rows = (earnings?.epochs ?? []).map((epoch) => {
    const row = document.createElement('tr');
    const cells = [String(epoch.epoch), epoch.status, epoch.points.toLocaleString('en-US')];
    for (const text of cells) {
      const cell = row.insertCell();
      cell.textContent = text;
    }
    amountCell(row.insertCell(), epoch.tokens);
    amountCell(row.insertCell(), epoch.cumulative_amount);
    return row;
  });
  body.replaceChildren(...rows);
  await refreshChainState();
  render();
}

/** Show the claimed and claimable amounts, given the claimed amount in base units. */
function showClaimed(claimed) {
  state.claimed = claimed === null ? null : BigInt(claimed);
  if (claimed === null) {
    amountCell($('claimed-amount'), null);
    amountCell($('claimable-amount'), null);
    $('claim').dataset.claimable = '0';
    return;
  }
  const claimable = state.entitled > state.claimed ? state.entitled - state.claimed : 0n;
  amountCell($('claimed-amount'), String(claimed));
  amountCell($('claimable-amount'), claimable.toString());
  $('claim').dataset.claimable = claimable.toString();
}

async function ethCall(to, data) {
  return state.provider.request({ method: 'eth_call', params: [{ to, data }, 'latest'] });
}

/**
 * Read the account's token balance and claimed amount from the chain, through the wallet. The
 * API learns of a claim only when its indexer reads the `Claimed` event, so right after a claim
 * the chain is ahead of it.
 */
async function refreshChainState() {
  const cell = $('wallet-balance');
  let deployment;
  try {
    deployment = await callApi('GET', '/v1/deployment');
  } catch (error) {
    if (error.code === 'chain_not_configured') {
      amountCell(cell, null);
      return;
    }
    throw error;
  }
  if (state.walletChainId !== deployment.chain_id) {
    cell.textContent = `switch the wallet to chain ${deployment.chain_id} to read it`;
    cell.title = '';
    return;
  }
  const accountWord = encodeAddressWord(state.account);
  const balance = BigInt(await ethCall(deployment.token, functionSelector('balanceOf(address)') + accountWord));
  amountCell(cell, balance.toString());
  if (state.claimed !== null) {
    const claimedOnChain = BigInt(await ethCall(deployment.distributor, functionSelector('claimed(address)') + accountWord));
    if (claimedOnChain > state.claimed) {
      showClaimed(claimedOnChain);
    }
  }
}

async function waitForReceipt(hash) {
  for (let attempt = 0; attempt < RECEIPT_POLL_LIMIT; attempt++) {
    const receipt = await state.provider.request({ method: 'eth_getTransactionReceipt', params: [hash] });
    if (receipt) {
      return receipt;
    }
    await new Promise((resolve) => setTimeout(resolve, RECEIPT_POLL_INTERVAL_MS));
  }
  throw new Error(`Transaction ${hash} was not mined after ${RECEIPT_POLL_LIMIT} checks: look it up in your wallet.`);
}

async function claim() {
  const payload = await callApi('GET', `/v1/claims/${state.account}`);
  if (BigInt(payload.claimable) === 0n) {
    showStatus('Nothing to claim: everything in the active root is already claimed.');
    return;
  }
  await ensureChain(payload.chain_id);
  showStatus(`Confirm the claim of ${formatUnits(payload.claimable)} tokens in your wallet.`);
  const hash = await state.provider.request({
    method: 'eth_sendTransaction',
    params: [{ from: state.account, to: payload.contract, data: payload.calldata, value: '0x0' }],
  });
  showStatus(`Claim sent in transaction ${hash}; waiting for it to be mined.`);
  const receipt = await waitForReceipt(hash);
  if (receipt.status !== '0x1') {
    throw new Error(`The claim transaction ${hash} reverted: nothing was minted.`);
  }
  const block = Number.parseInt(receipt.blockNumber, 16);
  await refreshEarnings();
  showStatus(`Claimed ${formatUnits(payload.claimable)} tokens in block ${block} (transaction ${hash}).`);
}

// --- Sessions and sharing --------------------------------------------------------------------

function pointsText(session) {
  if (session.points === null) {
    return '-';
  }
  const points = session.points.toLocaleString('en-US');
  return session.status === 'withdrawn' ? `${points} (reversed)` : points;
}

function sessionRow(session) {
  const row = document.createElement('tr');
  row.dataset.sessionId = session.session_id;
  const withdrawn = session.status === 'withdrawn';
  const texts = [
    new Date(session.started_at).toLocaleString(),
    `${Math.floor(session.active_seconds / 60)} min`,
    session.categories.join(', '),
    session.reason ? `${session.status} (${session.reason})` : session.status,
    pointsText(session),
    session.epoch === null ? '-' : String(session.epoch),
  ];
  for (const text of texts) {
    row.insertCell().textContent = text;
  }
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = withdrawn ? 'Deleted' : 'Delete';
  button.dataset.withdrawn = String(withdrawn);
  button.setAttribute('aria-label', `Delete the session started ${texts[0]}`);
  button.addEventListener('click', () => run(() => deleteSession(session.session_id)));
  row.insertCell().append(button);
  return row;
}

async function refreshSessions() {
  const query = new URLSearchParams({ limit: SESSIONS_PAGE_SIZE, offset: state.sessionsOffset });
  const page = await callApi('GET', `/v1/me/sessions?${query}`, { auth: true });
  state.sessionsTotal = page.total;
  $('sessions-table').tBodies[0].replaceChildren(...page.items.map(sessionRow));
  const first = page.items.length ? page.offset + 1 : 0;
  $('sessions-range').textContent = `${first}-${page.offset + page.items.length} of ${page.total}`;
  render();
}

async function deleteSession(sessionId) {
  if (!window.confirm('Delete this session? Its points are reversed, and this cannot be undone.')) {
    return;
  }
  const session = await callApi('DELETE', `/v1/me/sessions/${sessionId}`, { auth: true });
  await Promise.all([refreshSessions(), refreshEarnings()]);
  showStatus(`Session ${session.session_id} deleted.`);
}

function showSharing(view) {
  state.sharing = view.sharing;
  const since = new Date(view.effective_at).toLocaleString();
  $('sharing-state').textContent = view.sharing
    ? `Sharing is on (checked ${since}). New sessions are credited.`
    : `Sharing is paused (since ${since}). Sessions that start while paused are rejected.`;
  $('sharing-toggle').textContent = view.sharing ? 'Pause sharing' : 'Resume sharing';
}

async function refreshSharing() {
  showSharing(await callApi('GET', '/v1/me/sharing', { auth: true }));
}

async function toggleSharing() {
  const view = await callApi('PUT', '/v1/me/sharing', { body: { sharing: !state.sharing }, auth: true });
  showSharing(view);
  showStatus(view.sharing ? 'Sharing resumed.' : 'Sharing paused.');
}

// --- Wiring ----------------------------------------------------------------------------------

$('connect').addEventListener('click', () => run(connect));
$('sign-in').addEventListener('click', () => run(signIn));
$('sign-out').addEventListener('click', () => run(signOut));
$('claim').addEventListener('click', () => run(claim));
$('sharing-toggle').addEventListener('click', () => run(toggleSharing));
$('sessions-prev').addEventListener('click', () =>
  run(async () => {
    state.sessionsOffset = Math.max(state.sessionsOffset - SESSIONS_PAGE_SIZE, 0);
    await refreshSessions();
  }),
);
$('sessions-next').addEventListener('click', () =>
  run(async () => {
    state.sessionsOffset += SESSIONS_PAGE_SIZE;
    await refreshSessions();
  }),
);
render();
