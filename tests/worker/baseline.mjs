// The runtime's own floor for the route benchmark (tests/examples/worker_bench.rs): a JavaScript
// worker that does nothing but answer, run in the same workerd process as the flags worker. A GET
// answers at once; a POST first reads its body, as any handler of a POST API must.
export default {
  async fetch(request) {
    if (request.method === "POST") {
      await request.arrayBuffer();
    }
    return new Response('{"ok":true}', {
      headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
    });
  },
};
