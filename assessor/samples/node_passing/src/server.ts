import { createClient } from "redis";

import { createApp } from "./app.js";
import { RedisStore } from "./idempotency.js";
import { Stock } from "./stock.js";

const client = createClient({ url: process.env.REDIS_URL ?? "redis://localhost:6379/0" });
await client.connect();
const app = createApp({ stock: new Stock(), idempotency: new RedisStore(client) });
const port = Number(process.env.PORT ?? 3000);
app.listen(port, () => console.log(`stock-api listening on ${port}`));
