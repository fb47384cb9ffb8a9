// The API's JSON answers are read whole by Octokit. A server that streams a
// gigabyte of JSON (a hostile mirror, a broken proxy) would otherwise grow the
// updater's heap until the kernel kills it; this fetch cuts such an answer off.
// It reads the body itself, because Octokit turns a body that fails to read into
// an empty answer, and the cause would be lost.
import { UpdateError } from '../types.js';

/** Largest API answer molt reads: 100 releases with many assets fit in a few MB. */
export const API_MAX_BYTES = 16 << 20;

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** A fetch that reads each body whole and throws past `maxBytes` (declared or streamed). */
export function boundedFetch(maxBytes: number = API_MAX_BYTES, inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const res = await inner(input, init);
    if (!res.body || NULL_BODY_STATUS.has(res.status)) return res;
    const tooLarge = () => new UpdateError(`GitHub API answer from ${new URL(res.url || String(input)).pathname} is larger than ${maxBytes} bytes`, 'bad-input');
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes) {
      await res.body.cancel().catch(() => {});
      throw tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let seen = 0;
    for await (const chunk of res.body) {
      seen += chunk.byteLength;
      if (seen > maxBytes) throw tooLarge(); // leaving the loop cancels the stream
      chunks.push(chunk);
    }
    return new Response(Buffer.concat(chunks), { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}
