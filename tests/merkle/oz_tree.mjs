// Reference side of the Merkle cross-checks: runs @openzeppelin/merkle-tree (the version pinned
// in package.json) on JSON read from stdin and prints JSON on stdout.
//
//   node oz_tree.mjs          stdin {"leafEncoding": [...], "values": [[...], ...]}
//                             builds StandardMerkleTree.of(values, leafEncoding) and prints
//                             {"root", "proofs" (by value index), "dump", "timings"}
//   node oz_tree.mjs load     stdin a tree dump; prints the same object for
//                             StandardMerkleTree.load(dump)
//   node oz_tree.mjs render   stdin a tree dump; prints tree.render() as a JSON string
//   node oz_tree.mjs verify   stdin a tree dump or a proof document; prints true or false.
//                             A dump is true when it loads and every value's proof verifies
//                             with StandardMerkleTree.verify. A proof document is true when
//                             StandardMerkleTree.verify(root, leafEncoding, value, proof) is.
//                             A JSON list of documents prints a list of true or false.
//
// "timings" holds milliseconds measured inside node: "buildMs" for of() or load(), "proofsMs"
// for getProof() on every value. A rejected input prints false (verify) or exits with status 1
// (build, load), with the library's error message on stderr. Bad usage exits with status 2.

import { StandardMerkleTree } from '@openzeppelin/merkle-tree';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function describeTree(tree, buildMs) {
  const started = performance.now();
  const proofs = [];
  for (let index = 0; index < tree.length; index++) {
    proofs.push(tree.getProof(index));
  }
  const proofsMs = performance.now() - started;
  return { root: tree.root, proofs, dump: tree.dump(), timings: { buildMs, proofsMs } };
}

function build(input) {
  const started = performance.now();
  const tree = StandardMerkleTree.of(input.values, input.leafEncoding);
  return describeTree(tree, performance.now() - started);
}

function load(dump) {
  const started = performance.now();
  const tree = StandardMerkleTree.load(dump);
  return describeTree(tree, performance.now() - started);
}

function verify(document) {
  if (Array.isArray(document)) {
    return document.map(verifyOrFalse);
  }
  if (document.format !== undefined) {
    const tree = StandardMerkleTree.load(document);
    for (let index = 0; index < tree.length; index++) {
      const value = tree.at(index);
      if (!StandardMerkleTree.verify(tree.root, document.leafEncoding, value, tree.getProof(index))) {
        return false;
      }
    }
    return true;
  }
  return StandardMerkleTree.verify(document.root, document.leafEncoding, document.value, document.proof);
}

function verifyOrFalse(document) {
  try {
    return verify(document);
  } catch (error) {
    process.stderr.write(`${error.name}: ${error.message}\n`);
    return false;
  }
}

function write(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function main() {
  const mode = process.argv[2] ?? 'build';
  if (!['build', 'load', 'render', 'verify'].includes(mode)) {
    process.stderr.write(`unknown mode '${mode}': expected build, load, render or verify\n`);
    process.exitCode = 2;
    return;
  }

  let input;
  try {
    input = await readStdin();
  } catch (error) {
    process.stderr.write(`stdin is not valid JSON: ${error.message}\n`);
    process.exitCode = 2;
    return;
  }

  try {
    if (mode === 'build') {
      write(build(input));
    } else if (mode === 'load') {
      write(load(input));
    } else if (mode === 'render') {
      write(StandardMerkleTree.load(input).render());
    } else {
      write(verify(input));
    }
  } catch (error) {
    process.stderr.write(`${error.name}: ${error.message}\n`);
    if (mode === 'verify') {
      write(false);
    } else {
      process.exitCode = 1;
    }
  }
}

await main();
