// Ethereum helpers the contributor page needs without a build step or a library: Keccak-256,
// EIP-55 checksummed addresses, ABI function selectors, UTF-8 hex for personal_sign, and
// formatting of 18-decimal token amounts.
//
// Keccak-256 here is the original Keccak submission that Ethereum uses (domain padding 0x01),
// not NIST SHA3-256 (padding 0x06). It works on 64-bit lanes held in BigInt: slow, but the page
// only hashes addresses and function signatures.

const LANE_MASK = (1n << 64n) - 1n;
const RATE_BYTES = 136; // 1088-bit rate of Keccak-256 (capacity 512 bits)

// Round constants from the LFSR of FIPS 202, algorithm 5 (rc), built once.
const ROUND_CONSTANTS = (() => {
  function rcBit(t) {
    let register = 1;
    for (let i = 0; i < t % 255; i++) {
      register <<= 1;
      if (register & 0x100) {
        register ^= 0x171; // clear bit 8 and feed it back into bits 0, 4, 5 and 6
      }
    }
    return register & 1;
  }
  const constants = [];
  for (let round = 0; round < 24; round++) {
    let constant = 0n;
    for (let j = 0; j <= 6; j++) {
      if (rcBit(j + 7 * round)) {
        constant |= 1n << BigInt((1 << j) - 1);
      }
    }
    constants.push(constant);
  }
  return constants;
})();

// Rotation offset of lane (x, y) at index x + 5y, from the rho step of FIPS 202, algorithm 2.
const ROTATIONS = (() => {
  const offsets = new Array(25).fill(0);
  let x = 1;
  let y = 0;
  for (let t = 0; t < 24; t++) {
    offsets[x + 5 * y] = (((t + 1) * (t + 2)) / 2) % 64;
    [x, y] = [y, (2 * x + 3 * y) % 5];
  }
  return offsets;
})();

function rotateLeft(lane, bits) {
  if (bits === 0) {
    return lane;
  }
  const shift = BigInt(bits);
  return ((lane << shift) | (lane >> (64n - shift))) & LANE_MASK;
}

function permute(state) {
  const columns = new Array(5);
  const shuffled = new Array(25);
  for (let round = 0; round < 24; round++) {
    // theta
    for (let x = 0; x < 5; x++) {
      columns[x] = state[x] ^ state[x + 5] ^ state[x + 10] ^ state[x + 15] ^ state[x + 20];
    }
    for (let x = 0; x < 5; x++) {
      const mix = columns[(x + 4) % 5] ^ rotateLeft(columns[(x + 1) % 5], 1);
      for (let y = 0; y < 25; y += 5) {
        state[x + y] ^= mix;
      }
    }
    // rho and pi: lane (x, y) moves to (y, 2x + 3y)
    for (let x = 0; x < 5; x++) {
      for (let y = 0; y < 5; y++) {
        shuffled[y + 5 * ((2 * x + 3 * y) % 5)] = rotateLeft(state[x + 5 * y], ROTATIONS[x + 5 * y]);
      }
    }
    // chi
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) {
        state[x + y] = shuffled[x + y] ^ (~shuffled[((x + 1) % 5) + y] & LANE_MASK & shuffled[((x + 2) % 5) + y]);
      }
    }
    // iota
    state[0] ^= ROUND_CONSTANTS[round];
  }
}

/** Hash bytes with Keccak-256 and return the 32-byte digest. */
export function keccak256(bytes) {
  const blockCount = Math.floor(bytes.length / RATE_BYTES) + 1;
  const padded = new Uint8Array(blockCount * RATE_BYTES);
  padded.set(bytes);
  padded[bytes.length] ^= 0x01;
  padded[padded.length - 1] ^= 0x80;

  const state = new Array(25).fill(0n);
  for (let offset = 0; offset < padded.length; offset += RATE_BYTES) {
    for (let lane = 0; lane < RATE_BYTES / 8; lane++) {
      let value = 0n;
      for (let byte = 7; byte >= 0; byte--) {
        value = (value << 8n) | BigInt(padded[offset + lane * 8 + byte]);
      }
      state[lane] ^= value;
    }
    permute(state);
  }

  const digest = new Uint8Array(32);
  for (let lane = 0; lane < 4; lane++) {
    let value = state[lane];
    for (let byte = 0; byte < 8; byte++) {
      digest[lane * 8 + byte] = Number(value & 0xffn);
      value >>= 8n;
    }
  }
  return digest;
}

/** Encode bytes as lower-case hex with a 0x prefix. */
export function toHex(bytes) {
  return '0x' + Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Encode a string as UTF-8 hex, the form `personal_sign` expects for a text message. */
export function utf8ToHex(text) {
  return toHex(new TextEncoder().encode(text));
}

/**
 * Return the EIP-55 checksummed form of an address given in any case.
 * Throws on anything but 0x and 40 hex digits, and on mixed case with a wrong checksum.
 */
export function toChecksumAddress(address) {
  if (typeof address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
    throw new Error(`invalid address ${JSON.stringify(address)}: expected 0x and 40 hex digits`);
  }
  const lower = address.slice(2).toLowerCase();
  const hash = keccak256(new TextEncoder().encode(lower));
  let checksummed = '0x';
  for (let i = 0; i < 40; i++) {
    const nibble = i % 2 === 0 ? hash[i >> 1] >> 4 : hash[i >> 1] & 0x0f;
    checksummed += nibble >= 8 ? lower[i].toUpperCase() : lower[i];
  }
  const body = address.slice(2);
  const mixedCase = body !== body.toLowerCase() && body !== body.toUpperCase();
  if (mixedCase && address !== checksummed) {
    throw new Error(`invalid address ${address}: wrong EIP-55 checksum, expected ${checksummed}`);
  }
  return checksummed;
}

/** Return the 4-byte ABI selector of a function signature such as `balanceOf(address)`, as hex. */
export function functionSelector(signature) {
  return toHex(keccak256(new TextEncoder().encode(signature)).slice(0, 4));
}

/** ABI-encode an address as one 32-byte word, without 0x. */
export function encodeAddressWord(address) {
  return toChecksumAddress(address).slice(2).toLowerCase().padStart(64, '0');
}

/**
 * Format an amount of base units (a decimal string or BigInt) with `decimals` decimals, keeping
 * at most `shownDecimals` fractional digits. Digits past those are cut, never rounded up, and a
 * positive amount too small to show reads `< 0.000001`.
 */
export function formatUnits(amount, { decimals = 18, shownDecimals = 6 } = {}) {
  const value = BigInt(amount);
  const sign = value < 0n ? '-' : '';
  const magnitude = value < 0n ? -value : value;
  const scale = 10n ** BigInt(decimals);
  const whole = (magnitude / scale).toLocaleString('en-US');
  const fraction = (magnitude % scale).toString().padStart(decimals, '0').slice(0, shownDecimals).replace(/0+$/, '');
  if (magnitude > 0n && whole === '0' && !fraction) {
    return `${sign}< 0.${'0'.repeat(Math.max(shownDecimals - 1, 0))}1`;
  }
  return sign + whole + (fraction ? '.' + fraction : '');
}
