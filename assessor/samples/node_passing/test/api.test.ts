import request from "supertest";
import { beforeEach, describe, expect, test } from "vitest";

import { createApp } from "../src/app.js";
import { MemoryStore } from "../src/idempotency.js";
import { Stock } from "../src/stock.js";

let app: ReturnType<typeof createApp>;

beforeEach(() => {
  const stock = new Stock();
  stock.receive("ABC", 3);
  app = createApp({ stock, idempotency: new MemoryStore() });
});

const reserve = (key: string, body: object) =>
  request(app).post("/v1/reservations").set("Idempotency-Key", key).send(body);

describe("the API contract", () => {
  test("health answers", async () => {
    expect((await request(app).get("/health")).body).toEqual({ status: "ok" });
  });
  test("an item shows what is available", async () => {
    expect((await request(app).get("/v1/items/ABC")).body).toEqual({ sku: "ABC", available: 3 });
  });
  test("an unknown item is a 404 with a code", async () => {
    const response = await request(app).get("/v1/items/NOPE");
    expect([response.status, response.body.error]).toEqual([404, "not_found"]);
  });
  test("a reservation is created", async () => {
    const response = await reserve("k1", { sku: "ABC", quantity: 2 });
    expect(response.status).toBe(201);
    expect(response.headers["idempotent-replayed"]).toBe("false");
  });
  test("a repeated request replays the first answer", async () => {
    const first = await reserve("k2", { sku: "ABC", quantity: 1 });
    const second = await reserve("k2", { sku: "ABC", quantity: 1 });
    expect(second.body).toEqual(first.body);
    expect(second.headers["idempotent-replayed"]).toBe("true");
    expect((await request(app).get("/v1/items/ABC")).body.available).toBe(2);
  });
  test("the same key with another body is a conflict", async () => {
    await reserve("k3", { sku: "ABC", quantity: 1 });
    expect((await reserve("k3", { sku: "ABC", quantity: 2 })).status).toBe(409);
  });
  test("a missing idempotency key is refused", async () => {
    const response = await request(app).post("/v1/reservations").send({ sku: "ABC", quantity: 1 });
    expect(response.status).toBe(422);
  });
  test("an invalid body is refused", async () => {
    expect((await reserve("k4", { sku: "abc", quantity: 1 })).status).toBe(422);
  });
  test("broken JSON is a 400", async () => {
    const response = await request(app)
      .post("/v1/reservations")
      .set("Idempotency-Key", "k5")
      .set("Content-Type", "application/json")
      .send("{not json");
    expect(response.body.error).toBe("bad_json");
  });
  test("a reservation is confirmed, then cannot be cancelled", async () => {
    const { body } = await reserve("k6", { sku: "ABC", quantity: 1 });
    expect((await request(app).post(`/v1/reservations/${body.id}/confirm`)).body.status).toBe("confirmed");
    expect((await request(app).post(`/v1/reservations/${body.id}/cancel`)).status).toBe(409);
  });
  test("a reservation is read back and cancelled", async () => {
    const { body } = await reserve("k7", { sku: "ABC", quantity: 1 });
    expect((await request(app).get(`/v1/reservations/${body.id}`)).body.status).toBe("held");
    expect((await request(app).post(`/v1/reservations/${body.id}/cancel`)).body.status).toBe("cancelled");
  });
});
