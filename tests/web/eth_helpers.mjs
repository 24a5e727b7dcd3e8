// Runs the page's Ethereum helpers (api/web/eth.js) on JSON from stdin and prints the results:
// stdin {"texts": [...], "addresses": [...], "signatures": [...], "amounts": [...]}
// stdout {"keccak": [hex per text], "checksummed": [...], "selectors": [...], "formatted": [...]}.
// An address the helper rejects gives {"error": message} in its place.

import { formatUnits, functionSelector, keccak256, toChecksumAddress, toHex } from '../../api/web/eth.js';

const chunks = [];
for await (const chunk of process.stdin) {
  chunks.push(chunk);
}
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const encoder = new TextEncoder();

function checksumOrError(address) {
  try {
    return toChecksumAddress(address);
  } catch (error) {
    return { error: error.message };
  }
}

process.stdout.write(
  JSON.stringify({
    keccak: input.texts.map((text) => toHex(keccak256(encoder.encode(text)))),
    checksummed: input.addresses.map(checksumOrError),
    selectors: input.signatures.map(functionSelector),
    formatted: input.amounts.map((amount) => formatUnits(amount)),
  }),
);
