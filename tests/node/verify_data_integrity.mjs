// Verifies a Data Integrity credential with digitalbazaar's libraries, as a wallet or verifier would: the
// signature (eddsa-rdfc-2022), the issuer's did:web, and its revocation entry in the status list.
// Input on stdin: {"credential": {...}, "contexts": {url: document}, "web": "http://127.0.0.1:PORT"}.
// The DID document, our context and the status list are fetched from the service; did:web is resolved over
// plain http only because the test service listens on loopback.
// Output: {"verified": bool, "statusVerified": bool|null, "revoked": bool|null, "errors": [...]}.
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';

const input = JSON.parse(await new Promise(resolve => {
  let text = '';
  process.stdin.on('data', chunk => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));

function didWebUrl(did) {
  const [, , ...parts] = did.split('#')[0].split(':');
  const host = decodeURIComponent(parts[0]);
  const path = parts.slice(1).map(decodeURIComponent);
  return `${input.web.split('://')[0]}://${host}` + (path.length ? `/${path.join('/')}/did.json` : '/.well-known/did.json');
}

async function fetchJson(url) {
  const response = await fetch(url, {headers: {Accept: 'application/ld+json, application/json'}});
  if(!response.ok) {
    throw new Error(`${url} answered ${response.status}`);
  }
  return response.json();
}

async function documentLoader(url) {
  if(input.contexts[url]) {
    return {contextUrl: null, documentUrl: url, document: input.contexts[url]};
  }
  if(url.startsWith('did:web:')) {
    const didDocument = await fetchJson(didWebUrl(url));
    if(url.includes('#')) {
      const method = didDocument.verificationMethod.find(m => m.id === url);
      return {contextUrl: null, documentUrl: url, document: {'@context': didDocument['@context'], ...method}};
    }
    return {contextUrl: null, documentUrl: url, document: didDocument};
  }
  if(url.startsWith(input.web)) {
    return {contextUrl: null, documentUrl: url, document: await fetchJson(url)};
  }
  throw new Error(`refusing to load ${url}`);
}

const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});
const out = {verified: false, statusVerified: null, revoked: null, errors: []};
try {
  const result = await vc.verifyCredential({
    credential: input.credential, suite, documentLoader,
    checkStatus: async ({credential}) => checkStatus({
      credential, documentLoader, suite, verifyBitstringStatusListCredential: true, verifyMatchingIssuers: true
    })
  });
  out.verified = result.verified;
  if(result.statusResult) {
    out.statusVerified = result.statusResult.verified;
    out.revoked = result.statusResult.verified ? result.statusResult.results?.[0]?.status ?? null : null;
  }
  if(!result.verified) {
    const errors = [result.error, ...(result.results || []).map(r => r.error), result.statusResult?.error];
    out.errors = errors.filter(Boolean).flatMap(e => e.errors || [e]).map(e => String(e.message || e));
  }
} catch(error) {
  out.errors.push(String(error.message || error));
}
process.stdout.write(JSON.stringify(out));
